"""Job of tests/test_store.py::test_two_jobs_at_once_do_not_collide (two of it run at once):
argv[1] is the value this copy fills its arrays with."""
import sys
import numpy as np
import hpcray as ray
from jobkit import record

VALUE = float(sys.argv[1])

@ray.remote
def total(x):
    return float(x.sum())
value = float(ray.get(ray.put(np.full(1_000_000, VALUE))).sum())
refs = [ray.put(np.full(1_000_000, VALUE)) for _ in range(12)]   # spills in 32 MB
record("sums", sorted({ray.get(total.remote(r)) for r in refs} | {value}))
