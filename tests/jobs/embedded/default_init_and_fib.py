"""Job of tests/test_embedded.py::test_embedded_default_init_and_fib."""
import hpcray as ray
from jobkit import check

@ray.remote
def fib(n):
    if n < 2:
        return n
    return sum(ray.get([fib.remote(n - 1), fib.remote(n - 2)]))

@ray.remote
def one():
    return 1

@check
def default_init():
    ray.init()
    return [ray.is_initialized(), ray.get(one.remote()),
            ray.cluster_resources().get("CPU", 0) >= 1]

ray.shutdown()

@check
def fib_two_workers():
    ray.init(num_cpus=2)
    return ray.get(fib.remote(15))
