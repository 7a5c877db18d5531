"""Job of tests/test_launch.py::test_uncaught_exception_on_rank0."""
import hpcray as ray

@ray.remote
def f():
    return 1

ray.get(f.remote())
def deep_helper_xyz():
    raise RuntimeError("kaboom-on-rank0")
deep_helper_xyz()
