"""``@remote`` functions: option handling and submission of their tasks."""
import functools
import hashlib
import inspect

from .core.resources import request_of
from .launch import session
from .scheduling import captured, strategy_of
from .core import runtime_env
from .core.generators import ObjectRefGenerator
from .dag import FunctionNode
from .wire import serialization
from .wire.specs import DYNAMIC, STREAMING

# Ray's default: a task whose worker (here: its rank, or sys.exit) died runs again up to 3
# times; an application exception only with retry_exceptions.
DEFAULT_MAX_RETRIES = 3

# Options Ray accepts on tasks; those without meaning here are accepted and ignored, so that
# Ray programs run unchanged (see README, "Coming from Ray").
TASK_OPTIONS = {
    "num_returns", "num_cpus", "num_gpus", "resources", "max_retries", "retry_exceptions",
    "name", "memory", "scheduling_strategy", "runtime_env", "accelerator_type", "max_calls",
    "placement_group", "placement_group_bundle_index", "placement_group_capture_child_tasks",
    "label_selector", "enable_task_events", "_metadata", "object_store_memory",
    "_generator_backpressure_num_objects",
}


def validate_options(options, allowed, what):
    for key in options:
        if key not in allowed:
            raise ValueError(f"invalid option {key!r} for {what}; valid options are "
                             f"{', '.join(sorted(allowed))}")
    num_returns = options.get("num_returns", 1)
    if num_returns not in (STREAMING, DYNAMIC) and (
            not isinstance(num_returns, int) or isinstance(num_returns, bool) or num_returns < 0):
        raise ValueError(f"num_returns must be a non-negative int, \"streaming\" or "
                         f"\"dynamic\", got {num_returns!r}")
    retries = options.get("max_retries", 0)
    if not isinstance(retries, int) or retries < -1:
        raise ValueError(f"max_retries must be an int >= -1, got {retries!r}")
    limit = options.get("_generator_backpressure_num_objects")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise ValueError(f"_generator_backpressure_num_objects must be an int, got {limit!r}")
    retry_exceptions = options.get("retry_exceptions", False)
    if not isinstance(retry_exceptions, bool):
        if not (isinstance(retry_exceptions, (list, tuple)) and all(
                isinstance(c, type) and issubclass(c, BaseException) for c in retry_exceptions)):
            raise ValueError("retry_exceptions must be a bool or a list of exception classes")
    for key in ("num_cpus", "num_gpus"):
        value = options.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"{key} must be a non-negative number, got {value!r}")
    resources = options.get("resources")
    if resources is not None and not isinstance(resources, dict):
        raise ValueError(f"resources must be a dict, got {resources!r}")
    return options


class _Export:
    """The pickled function and its id, computed once and shared by ``.options()`` copies."""
    __slots__ = ("blob", "func_id")

    def __init__(self):
        self.blob = None
        self.func_id = None


_UNSET = object()


class RemoteFunction:
    """A function turned into a task factory by ``@hpcray.remote``; call ``.remote(...)``."""

    def __init__(self, function, options=None, _export=None):
        self._function = function
        self._options = validate_options(dict(options or {}), TASK_OPTIONS,
                                         f"remote function {function.__qualname__}")
        self._export = _export or _Export()
        self._request = request_of(self._options.get("num_cpus"), self._options.get("num_gpus"),
                                   self._options.get("resources"),
                                   memory=self._options.get("memory"))
        self._name = f"{function.__module__}.{function.__qualname__}"
        self._strategy = _UNSET                # the scheduling strategy as specs carry it
        self._runtime_env = runtime_env.check(self._options.get("runtime_env"),
                                              f"runtime_env of {self._name}")
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        name = self._function.__name__
        raise TypeError(f"remote functions cannot be called directly: instead of {name}(...), "
                        f"use {name}.remote(...)")

    def options(self, **options):
        """Return a copy of this function with some options overridden (Ray's ``.options``)."""
        merged = dict(self._options)
        merged.update(options)
        return RemoteFunction(self._function, merged, self._export)

    def bind(self, *args, **kwargs):
        """A node of a DAG that calls this function with these arguments (``hpcray.dag``)."""
        return FunctionNode(self, args, kwargs)

    def remote(self, *args, **kwargs):
        """Submit a task; return an ObjectRef, or a list of them when ``num_returns`` > 1
        (None when it is 0); for a generator function (``num_returns="streaming"``, its
        default, as in Ray), an ObjectRefGenerator of its items."""
        return self.submit(args, kwargs)

    def submit(self, args, kwargs, node_hint=None):
        """``.remote(*args, **kwargs)``; ``node_hint`` (internal callers, e.g. reductions)
        names the node it should run on, when a rank there has room."""
        options = self._options
        num_returns = options.get("num_returns")
        if num_returns is None:
            num_returns = STREAMING if inspect.isgeneratorfunction(self._function) else 1
        stream = num_returns if num_returns in (STREAMING, DYNAMIC) else None
        if stream is not None:
            num_returns = 1                    # (its one return object: the stream's end)
            limit = options.get("_generator_backpressure_num_objects")
            if stream == STREAMING and limit is not None and limit > 0:
                stream = int(limit)            # (STREAMING, paused at ``limit`` unconsumed)
        blob, func_id = self.exported()
        rt = session.runtime()
        strategy = self._strategy
        if strategy is _UNSET:
            strategy = self._strategy = strategy_of(options, rt.job)
        if strategy is None:
            strategy = captured()
        refs = rt.submitter.submit_task(
            self._name, func_id, blob, args, kwargs, num_returns, self._request,
            options.get("max_retries", DEFAULT_MAX_RETRIES),
            options.get("retry_exceptions", False), node_hint, strategy, stream,
            runtime_env.merged(session.state.runtime_env, self._runtime_env))
        if stream is not None and stream != DYNAMIC:
            return ObjectRefGenerator(refs[0])
        if num_returns == 0:
            return None
        return refs[0] if num_returns == 1 else refs

    def exported(self):
        export = self._export
        if export.blob is None:
            blob = serialization.dumps_function(self._function)
            export.func_id = hashlib.blake2b(blob, digest_size=12).digest()
            export.blob = blob
        return export.blob, export.func_id

    def __reduce__(self):
        return (RemoteFunction, (self._function, self._options))

    def __repr__(self):
        return f"<hpcray remote function {self._name}>"
