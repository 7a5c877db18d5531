"""Job of tests/test_tasks.py::test_nested_get_wakes_promptly."""
import time
import hpcray as ray
from jobkit import record

@ray.remote
def leaf(x):
    return x

@ray.remote
def mid(x):
    return ray.get(leaf.remote(x)) + 1

@ray.remote
def chain(k):
    return 0 if k == 0 else 1 + ray.get(chain.remote(k - 1))

ray.get(mid.remote(0))            # warm up (function export, first spawn)
t0 = time.monotonic()
vals = [ray.get(mid.remote(i)) for i in range(10)]
record("ten_nested", [vals == list(range(1, 11)), time.monotonic() - t0])
t0 = time.monotonic()
v = ray.get(chain.remote(8))
record("chain8", [v, time.monotonic() - t0])
