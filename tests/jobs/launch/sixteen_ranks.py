"""Job of tests/test_launch.py::test_sixteen_ranks_hundred_sleep_tasks."""
import time
import hpcray as ray
from jobkit import record

@ray.remote
def nap(i):
    time.sleep(0.1)
    return i

@ray.remote
def where():
    return ray.get_runtime_context().get_rank()

t0 = time.time()
out = ray.get([nap.remote(i) for i in range(100)])
record("ok", out == list(range(100)))
record("elapsed", time.time() - t0)
record("ranks", sorted(set(ray.get([where.remote() for _ in range(60)]))))
