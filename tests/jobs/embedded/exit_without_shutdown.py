"""Job of tests/test_embedded.py::test_embedded_exit_without_shutdown."""
import hpcray as ray
from jobkit import record
ray.init(num_cpus=2)

@ray.remote
def f(x):
    return x * 3

record("v", ray.get([f.remote(i) for i in range(4)]))
