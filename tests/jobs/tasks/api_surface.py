"""Job of tests/test_tasks.py::test_api_surface_without_init."""
import hpcray as ray
from jobkit import check, record
names = ["remote", "get", "put", "wait", "cancel", "init", "shutdown", "is_initialized",
         "get_runtime_context", "cluster_resources", "ObjectRef", "exceptions"]
record("missing", [n for n in names if not hasattr(ray, n)])
exc = ray.exceptions
enames = ["TaskError", "RayTaskError", "GetTimeoutError", "TaskCancelledError",
          "SerializationError"]
record("missing_exceptions", [n for n in enames if not hasattr(exc, n)])
record("subclassing", [issubclass(exc.GetTimeoutError, TimeoutError),
                       issubclass(exc.SerializationError, TypeError),
                       issubclass(exc.RayTaskError, exc.TaskError)
                       or issubclass(exc.TaskError, exc.RayTaskError)])
record("initialized_after_import", ray.is_initialized())

@ray.remote
def f(x):
    return x

@check
def direct_call_without_init():
    f(1)
