"""A process of "another job" for tests/test_harness.py (not started through the job
fixtures): maps the /dev/shm segment argv[1] until its stdin closes."""
import mmap, os, sys

fd = os.open("/dev/shm/" + sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
os.ftruncate(fd, 4096)
view = mmap.mmap(fd, 4096)
print("mapped", flush=True)
sys.stdin.read()
