"""Job of tests/test_harness.py::test_leftover_processes_are_the_jobs_only: starts a process
in a session of its own (as hydra starts ranks) that outlives the job."""
import subprocess, sys, time
from jobkit import record

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
record("child", child.pid)
time.sleep(float(sys.argv[1]))     # the harness learns the job's processes every 200 ms
