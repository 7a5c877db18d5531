"""Job of tests/test_errors.py::test_task_exceptions."""
import socket
import hpcray as ray
from jobkit import check

@ray.remote
def explode_with_valueerror(x):
    raise ValueError("boom-%d" % x)

@ray.remote
def ok(x):
    return x

@ray.remote
def rank():
    return ray.get_runtime_context().get_rank()

@ray.remote
def outer_calls_failing_inner():
    return ray.get(explode_with_valueerror.remote(7))

@ray.remote
def consume(x):
    return x

class CustomError(Exception):
    pass

@ray.remote
def raise_custom():
    raise CustomError("custom-payload")

class TwoArgError(Exception):            # does not survive a plain pickle round trip
    def __init__(self, a, b):
        super().__init__(f"two-arg {a} {b}")

@ray.remote
def raise_two_arg():
    raise TwoArgError(1, 2)

@check
def task_error():
    ray.get(explode_with_valueerror.remote(1))

@check
def isinstance_checks():
    try:
        ray.get(explode_with_valueerror.remote(2))
    except Exception as e:
        return {"TaskError": isinstance(e, ray.exceptions.TaskError),
                "RayTaskError": isinstance(e, ray.exceptions.RayTaskError),
                "ValueError": isinstance(e, ValueError),
                "alias": issubclass(ray.exceptions.RayTaskError, ray.exceptions.TaskError)
                         or issubclass(ray.exceptions.TaskError, ray.exceptions.RayTaskError)}
    return "no exception"

@check
def except_valueerror_clause():
    try:
        ray.get(explode_with_valueerror.remote(3))
    except ValueError as e:
        return "caught-as-ValueError"

@check
def worker_survives():
    return ray.get([ok.remote(i) for i in range(5)])

@check
def same_worker_after_error():
    # with one worker (n=2) the failing task and the next one share a rank
    r1 = ray.get(rank.remote())
    try:
        ray.get(explode_with_valueerror.remote(4))
    except Exception:
        pass
    return [r1, ray.get(rank.remote())]

@check
def error_in_list_get():
    ray.get([ok.remote(1), explode_with_valueerror.remote(5), ok.remote(2)])

@check
def nested_task_error():
    ray.get(outer_calls_failing_inner.remote())

@check
def dependency_error():
    ray.get(consume.remote(explode_with_valueerror.remote(8)))

@check
def custom_exception_class():
    try:
        ray.get(raise_custom.remote())
    except CustomError as e:
        return ["CustomError", isinstance(e, ray.exceptions.TaskError)]

@check
def unpicklable_exception_args():
    ray.get(raise_two_arg.remote())

@check
def put_of_error_ref_in_wait():
    r = explode_with_valueerror.remote(9)
    ready, _ = ray.wait([r], timeout=30)
    return len(ready)

@check
def still_works():
    return ray.get(ok.remote("alive"))
