"""Job of tests/test_reduce.py::test_embedded_driver."""
import numpy as np
import hpcray as ray
from jobkit import record
ray.init(num_cpus=2)
@ray.remote
def make(i):
    return np.full(500_000, float(i))
refs = [make.remote(i) for i in range(4)] + [ray.put(np.full(500_000, 10.0))]
record("sum", float(ray.get(ray.reduce(refs))[0]))
record("max", float(ray.get(ray.reduce(refs, "max"))[-1]))
ray.shutdown()
