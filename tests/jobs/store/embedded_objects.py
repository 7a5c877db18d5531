"""Job of tests/test_store.py::test_embedded_driver_objects_reach_workers."""
import numpy as np
import hpcray as ray
from jobkit import record
ray.init(num_cpus=2)
@ray.remote
def total(x):
    return float(x.sum())
@ray.remote
def make(n):
    return np.ones(n)
ref = ray.put(np.ones(3_000_000))
record("sums", ray.get([total.remote(ref) for _ in range(4)]))
record("back", float(ray.get(make.remote(3_000_000)).sum()))
ray.shutdown()
