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

__version__ = "0.1.0"

__all__ = [
    "ActorClass", "ActorHandle", "DynamicObjectRefGenerator", "ObjectRef",
    "ObjectRefGenerator", "RemoteFunction", "cloudpickle", "dag", "available_resources",
    "cancel", "cluster_resources", "exceptions", "get", "get_actor", "get_gpu_ids",
    "get_runtime_context", "init", "is_initialized", "kill", "method", "nodes", "put",
    "reduce", "register_shutdown_hook", "remote", "shutdown", "util", "wait",
]


def __getattr__(name):
    """``hpcray._private`` (Ray's ``ray._private.internal_api``, which Ray's docs use) is
    loaded when first asked for."""
    if name == "_private":
        import importlib
        return importlib.import_module("hpcray._private")
    raise AttributeError(f"module 'hpcray' has no attribute {name!r}")
