"""hpcray: Ray's ``@remote`` programming model inside an MPI job.

``import hpcray as ray`` in a Ray program, then run it with
``mpirun -n 16 python -m hpcray script.py`` (or plain ``python script.py``).
"""
from . import exceptions
from .actor import ActorClass, ActorHandle, method
from .api import (available_resources, cancel, cluster_resources, get, get_actor,
                  get_gpu_ids, get_runtime_context, init, is_initialized, kill, nodes, put,
                  reduce, remote, shutdown, wait)
from .core.generators import DynamicObjectRefGenerator, ObjectRefGenerator
from .core.object_ref import ObjectRef
from .launch.preemption import register_shutdown_hook
from .remote_function import RemoteFunction
from . import cloudpickle, dag, util
from .util.state import timeline

__version__ = "0.1.0"

__all__ = [
    "ActorClass", "ActorHandle", "DynamicObjectRefGenerator", "ObjectRef",
    "ObjectRefGenerator", "RemoteFunction", "cloudpickle", "dag", "available_resources",
    "cancel", "cluster_resources", "exceptions", "get", "get_actor", "get_gpu_ids",
    "get_runtime_context", "init", "is_initialized", "kill", "method", "nodes", "put",
    "reduce", "register_shutdown_hook", "remote", "shutdown", "timeline", "util", "wait",
]


# Ray APIs that cannot exist in an MPI job: using them raises an error that says why.
_IMPOSSIBLE = {
    "client": "Ray Client connects to a running Ray cluster; an hpcray job is its MPI "
              "allocation: run the script inside it (mpirun/srun ... python -m hpcray)",
    "java_function": "cross-language workers are not part of an MPI job of Python ranks",
    "cpp_function": "cross-language workers are not part of an MPI job of Python ranks",
    "java_actor_class": "cross-language workers are not part of an MPI job of Python ranks",
    "cpp_actor_class": "cross-language workers are not part of an MPI job of Python ranks",
}


def _impossible(name):
    def unavailable(*args, **kwargs):
        raise NotImplementedError(f"hpcray.{name}: {_IMPOSSIBLE[name]}")
    unavailable.__name__ = name
    return unavailable


def __getattr__(name):
    """``hpcray._private`` (Ray's ``ray._private.internal_api``, which Ray's docs use) is
    loaded when first asked for; Ray's APIs that cannot exist here raise when called."""
    if name == "_private":
        import importlib
        return importlib.import_module("hpcray._private")
    if name in _IMPOSSIBLE:
        return _impossible(name)
    raise AttributeError(f"module 'hpcray' has no attribute {name!r}")
