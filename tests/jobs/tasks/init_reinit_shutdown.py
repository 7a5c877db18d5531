"""Job of tests/test_tasks.py::test_init_attach_reinit_shutdown."""
import hpcray as ray
from jobkit import check

@ray.remote
def f(x):
    return x + 1

@ray.remote
def rank():
    return ray.get_runtime_context().get_rank()

@check
def first_init():
    ray.init()
    return ray.is_initialized()

@check
def second_init_raises():
    ray.init()

@check
def ignore_reinit():
    ray.init(num_cpus=2, ignore_reinit_error=True, include_dashboard=False,
             namespace="x", address="auto")
    return ray.get(f.remote(1))

@check
def shutdown_then_init():
    ray.shutdown()
    after_shutdown = ray.is_initialized()
    ray.init()
    return [after_shutdown, ray.is_initialized(), ray.get(f.remote(2)),
            ray.get(rank.remote()) >= 1]

@check
def twice_more():
    ray.shutdown()
    ray.init()
    return ray.get([f.remote(i) for i in range(5)])
