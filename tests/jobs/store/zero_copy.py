"""Job of tests/test_store.py::test_zero_copy_reads."""
import numpy as np
import hpcray as ray
from jobkit import record, runtime
store = runtime().store

a = np.arange(4_000_000, dtype=np.float64)          # 32 MB: goes to the store
ref = ray.put(a)
b = ray.get(ref)
record("shares_store", bool(np.shares_memory(b, store.data)))
record("read_only", b.flags.writeable)
record("equal", bool((a == b).all()))
try:
    b[0] = 1.0
    record("write", "allowed")
except ValueError:
    record("write", "refused")

@ray.remote
def inspect(x):
    s = runtime().store
    return [bool(np.shares_memory(x, s.data)), x.flags.writeable, float(x.sum())]
record("task_view", ray.get(inspect.remote(ref)))

@ray.remote
def make(n):
    return np.full(n, 2.0)
c = ray.get(make.remote(2_000_000))
record("result_shares_store", bool(np.shares_memory(c, store.data)))
record("result_sum", float(c.sum()))
small = ray.get(ray.put(np.arange(10)))
record("small_inline", not np.shares_memory(small, store.data))
