"""Job of tests/test_harness.py::test_leak_check_counts_the_jobs_files_only: leaves behind
what a careless job would -- a /dev/shm segment it mapped, a spill directory tagged with its
rank 0's pid -- for the leak check to find. Both are left at the very end (other suites' old
harnesses delete stray files of the kind)."""
import mmap, os, sys, tempfile, time
from jobkit import record

segment = f"mpich_shm_leaktest_{os.getpid()}"
fd = os.open(f"/dev/shm/{segment}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
os.ftruncate(fd, 4096)
view = mmap.mmap(fd, 4096)          # in use: the harness sees it
time.sleep(float(sys.argv[1]))
spill = os.path.join(tempfile.gettempdir(), f"hpcray-spill-{os.getpid():x}-0badcafe-node0")
os.makedirs(spill)
record("leaked", [segment, spill])
