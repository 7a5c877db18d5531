"""Job of tests/test_store.py::test_large_arguments_travel_through_the_store."""
import time
import numpy as np
import hpcray as ray
from jobkit import record, runtime
rt = runtime()

@ray.remote
def total(x, scale=1.0):
    return float(x.sum()) * scale, x.flags.writeable

base = rt.store.in_use()
arr = np.ones(3_000_000)                                   # 24 MB passed by value
record("by_value", ray.get([total.remote(arr) for _ in range(3)]))
record("kwarg", ray.get(total.remote(x=arr, scale=2.0)))
record("small", ray.get(total.remote(np.ones(10))))
for _ in range(50):
    with rt.lock:
        rt.progress.turn()
    time.sleep(0.01)
record("freed", rt.store.in_use() - base)
