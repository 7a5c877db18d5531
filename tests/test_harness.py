"""The test harness itself: its leak checks (helpers.JobTracker) count what the job under
test leaves behind -- /dev/shm segments, spill directories, processes -- and nothing that
another job running on the machine at the same time owns or leaves."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from helpers import JOBS_DIR


def _remove(paths):
    for path in paths:
        path = os.path.join("/dev/shm", path)          # a spill dir's absolute path stays
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)


@pytest.mark.parametrize("embedded", [True, False], ids=["embedded", "mpiexec"])
def test_leak_check_counts_the_jobs_files_only(start_job, embedded):
    me = os.getpid()
    job = start_job("harness/leaked_files.py", n=2, args=[1.0], embedded=embedded)
    # Meanwhile another job: a segment in use, a leaked segment, a spill directory.
    other = subprocess.Popen([sys.executable, JOBS_DIR / "harness" / "other_job.py",
                              f"mpich_shm_other_{me}"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    other_files = [f"mpich_shm_other_{me}", f"mpich_shm_otherleak_{me}",
                   os.path.join(tempfile.gettempdir(), f"hpcray-spill-{other.pid:x}-0-node0")]
    leaked = []
    try:
        assert other.stdout.readline() == "mapped\n"
        open(os.path.join("/dev/shm", other_files[1]), "w").close()
        os.makedirs(other_files[2])
        res = job.wait(60)
        res.assert_ok()
        leaked = res.value("leaked")
        assert res.files_left == sorted(leaked), res.describe()
        assert leaked[0] in res.files_seen, res.describe()      # seen while the job ran
        assert other.poll() is None                             # never touched
        assert all(os.path.exists(os.path.join("/dev/shm", p)) for p in other_files)
    finally:
        other.stdin.close()
        other.wait(10)
        _remove(other_files + leaked)


def test_leftover_processes_are_the_jobs_only(start_job):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    try:
        res = start_job("harness/leaked_process.py", n=2, args=[1.0]).wait(60)
        res.assert_ok()
        assert [line.split(":")[0] for line in res.leftover] == [str(res.value("child"))], \
            res.describe()
        assert other.poll() is None                             # another job's: untouched
    finally:
        other.kill()
        other.wait(10)
