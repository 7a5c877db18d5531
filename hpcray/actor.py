"""Actors as the user sees them: ``@remote`` classes, their handles and methods.

``Cls.remote(...)`` returns an :class:`ActorHandle` at once; the head places the actor on a
rank and the calls made meanwhile wait at the caller until it knows where (``actor_client``).
``handle.method.remote(...)`` returns ObjectRefs like a task. A handle holds a ref to the
actor's *token*, an object its creator owns: handles travel in arguments, results and puts
like any ref, and when the last one anywhere is gone, the actor ends.
"""
import hashlib
import inspect

from .actors.host import current_call
from .core import runtime_env
from .core.invoke import ExitActor
from .core.resources import request_of
from .launch import session
from .remote_function import validate_options
from .scheduling import captured, strategy_of
from .core.generators import ObjectRefGenerator
from .dag import ClassMethodNode, ClassNode
from .wire.specs import DYNAMIC, STREAMING
from .wire import serialization

ACTOR_OPTIONS = {
    "num_cpus", "num_gpus", "resources", "name", "namespace", "get_if_exists", "lifetime",
    "max_concurrency", "max_restarts", "max_task_retries", "max_pending_calls", "memory",
    "scheduling_strategy", "runtime_env", "accelerator_type", "concurrency_groups",
    "placement_group", "placement_group_bundle_index", "placement_group_capture_child_tasks",
    "label_selector", "enable_task_events", "_metadata", "object_store_memory",
    "allow_out_of_order_execution",
}
METHOD_OPTIONS = {"num_returns", "concurrency_group", "max_task_retries", "retry_exceptions",
                  "enable_task_events", "name", "_metadata",
                  "_generator_backpressure_num_objects"}
DEFAULT_ASYNC_CONCURRENCY = 1000       # Ray's default for async actors


def exit_actor():
    """End the actor whose method calls this, as Ray's ``ray.actor.exit_actor()``: this call
    and every call waiting for the actor raise ActorDiedError, and later calls too.

    Raises:
        TypeError: called outside an actor method (as Ray does).
    """
    call = current_call.get()
    if call is None or call.actor_id is None:
        raise TypeError("exit_actor() was called outside an actor method")
    raise ExitActor(0)


def method(*args, **options):
    """Declare options of an actor method, as ``ray.method``: ``@hpcray.method(num_returns=2)``."""
    if args:
        raise TypeError("@method takes keyword options only, e.g. @method(num_returns=2)")
    validate_options(options, METHOD_OPTIONS, "an actor method")

    def decorator(function):
        function.__hpcray_method_options__ = options
        return function
    return decorator


def _returns(num_returns, options):
    """A method's ``num_returns`` as handles keep it: ``(STREAMING, N)`` for a generator
    method with back-pressure (``_generator_backpressure_num_objects``)."""
    limit = options.get("_generator_backpressure_num_objects")
    if limit and (num_returns == STREAMING or isinstance(num_returns, tuple)):
        return (STREAMING, int(limit))
    return num_returns


def _method_table(cls):
    """``{name: num_returns}`` of the methods a handle may call (``__ray_ready__``, Ray's, on
    every actor)."""
    table = {"__ray_ready__": 1}
    for name, member in inspect.getmembers(cls, callable):
        if name.startswith("__") and name != "__call__":
            continue
        options = getattr(member, "__hpcray_method_options__", {})
        default = STREAMING if (inspect.isgeneratorfunction(member)
                                or inspect.isasyncgenfunction(member)) else 1   # (Ray's)
        table[name] = _returns(options.get("num_returns", default), options)
    return table


def _is_async(cls):
    return any(inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
               for _, member in inspect.getmembers(cls, callable))


class _Export:
    __slots__ = ("blob", "class_id")

    def __init__(self):
        self.blob = None
        self.class_id = None


class ActorClass:
    """A class turned into an actor factory by ``@hpcray.remote``; call ``.remote(...)``."""

    def __init__(self, cls, options=None, _export=None):
        self._cls = cls
        self._options = validate_options(dict(options or {}), ACTOR_OPTIONS,
                                         f"actor class {cls.__qualname__}")
        _check_actor_options(self._options)
        self._export = _export or _Export()
        self._name = cls.__name__
        self._runtime_env = runtime_env.check(self._options.get("runtime_env"),
                                              f"runtime_env of actor {cls.__qualname__}")
        self._methods = _method_table(cls)
        self._is_async = _is_async(cls)
        # Actors hold what they ask for as long as they live; by default nothing (as in
        # Ray, where an actor needs 1 CPU to be placed but holds 0 while it runs).
        self._request = request_of(self._options.get("num_cpus"), self._options.get("num_gpus"),
                                   self._options.get("resources"), default_cpus=0,
                                   memory=self._options.get("memory"))
        self.__doc__ = cls.__doc__
        self.__module__ = cls.__module__
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__

    def __call__(self, *args, **kwargs):
        raise TypeError(f"actors cannot be instantiated directly: instead of "
                        f"{self._cls.__name__}(...), use {self._cls.__name__}.remote(...)")

    def options(self, **options):
        """A copy of this actor class with some options overridden (Ray's ``.options``)."""
        merged = dict(self._options)
        merged.update(options)
        return ActorClass(self._cls, merged, self._export)

    def bind(self, *args, **kwargs):
        """A node of a DAG that builds this actor (``hpcray.dag``)."""
        return ClassNode(self, args, kwargs)

    def remote(self, *args, **kwargs):
        """Create an actor; return its :class:`ActorHandle` (construction runs remotely).

        Raises:
            ValueError: its name is taken by a live actor (without ``get_if_exists``).
            SerializationError: an argument cannot be pickled.
        """
        rt = session.runtime()
        options = self._options
        blob, class_id = self.exported()
        parts = rt.client.create(self._name, class_id, blob, args, kwargs, self._request,
                                 self.concurrency(), self._is_async, self._methods,
                                 name=options.get("name"), namespace=options.get("namespace"),
                                 detached=options.get("lifetime") == "detached",
                                 get_if_exists=bool(options.get("get_if_exists")),
                                 max_restarts=options.get("max_restarts") or 0,
                                 max_task_retries=options.get("max_task_retries") or 0,
                                 strategy=strategy_of(options, rt.job) or captured(),
                                 runtime_env=runtime_env.merged(session.state.runtime_env,
                                                                self._runtime_env))
        return ActorHandle(*parts, rt.client.session_key())

    def exported(self):
        export = self._export
        if export.blob is None:
            blob = serialization.dumps_function(self._cls)
            export.class_id = hashlib.blake2b(blob, digest_size=12).digest()
            export.blob = blob
        return export.blob, export.class_id

    def concurrency(self):
        limit = self._options.get("max_concurrency")
        if limit is None:
            return DEFAULT_ASYNC_CONCURRENCY if self._is_async else 1
        return limit

    def __reduce__(self):
        return (ActorClass, (self._cls, self._options))

    def __repr__(self):
        return f"<hpcray actor class {self._name}>"


def _check_actor_options(options):
    limit = options.get("max_concurrency")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"max_concurrency must be a positive int, got {limit!r}")
    lifetime = options.get("lifetime")
    if lifetime not in (None, "detached", "non_detached"):
        raise ValueError(f"lifetime must be None, 'detached' or 'non_detached', got {lifetime!r}")
    name = options.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"an actor's name must be a non-empty string, got {name!r}")
    if options.get("get_if_exists") and name is None:
        raise ValueError("get_if_exists=True needs a name")
    namespace = options.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ValueError(f"namespace must be a string, got {namespace!r}")
    for knob in ("max_restarts", "max_task_retries"):
        value = options.get(knob)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < -1):
            raise ValueError(f"{knob} must be an int >= -1 (-1: without limit), got {value!r}")


class ActorHandle:
    """A handle to an actor: call its methods with ``handle.method.remote(...)``.

    Picklable: pass it to tasks and other actors, return it, put it. Equal handles name the
    same actor.
    """

    def __init__(self, token, class_name, methods, is_async=False, session=None):
        self._token = token                    # ObjectRef to the actor's token object
        self._class_name = class_name
        self._methods = methods
        self._is_async = is_async
        self._session = session                # hpcray.shutdown() ends the session's actors

    @property
    def _actor_id(self):
        return self._token.id

    def __getattr__(self, name):
        methods = self.__dict__.get("_methods")
        if methods is not None and name in methods:
            return ActorMethod(self, name, methods[name])
        raise AttributeError(f"actor {self.__dict__.get('_class_name', '?')} has no method "
                             f"{name!r}")

    def __reduce__(self):
        return (ActorHandle, (self._token, self._class_name, self._methods, self._is_async,
                              self._session))

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._token.id == self._token.id

    def __hash__(self):
        return hash(("actor", self._token.id))

    def __repr__(self):
        return f"Actor({self._class_name}, {self._token.id:016x})"


def actor_id_of(handle):
    """The id of the actor a handle names (for hpcray's own modules: ``_actor_id`` stays
    private on the handle, so that no name of the actor's own methods is shadowed)."""
    return handle._actor_id


class ActorMethod:
    """``handle.method``: ``.remote(...)`` calls it, ``.options(num_returns=...)`` adjusts it."""
    __slots__ = ("_handle", "_name", "_num_returns")

    def __init__(self, handle, name, num_returns):
        self._handle = handle
        self._name = name
        self._num_returns = num_returns

    def remote(self, *args, **kwargs):
        """Call the method; return an ObjectRef (a list for ``num_returns`` > 1, None for 0;
        an ObjectRefGenerator for a generator method, ``num_returns="streaming"``).

        Raises:
            ActorDiedError: the handle belongs to an earlier session.
        """
        handle, num_returns = self._handle, self._num_returns
        refs = session.runtime().client.call(handle._token.id, handle._class_name, self._name,
                                             args, kwargs, num_returns, handle._session)
        if num_returns == STREAMING or isinstance(num_returns, tuple):
            return ObjectRefGenerator(refs[0])
        if num_returns == DYNAMIC:
            return refs[0]
        if num_returns == 0:
            return None
        return refs[0] if num_returns == 1 else refs

    def bind(self, *args, **kwargs):
        """A node of a DAG that calls this method of this actor (``hpcray.dag``)."""
        return ClassMethodNode(self._handle, self._name, args, kwargs)

    def options(self, **options):
        validate_options(options, METHOD_OPTIONS, f"actor method {self._name}")
        return ActorMethod(self._handle, self._name,
                           _returns(options.get("num_returns", self._num_returns), options))

    def __call__(self, *args, **kwargs):
        raise TypeError(f"actor methods cannot be called directly: instead of "
                        f"{self._name}(...), use {self._name}.remote(...)")

    def __repr__(self):
        return f"<actor method {self._handle._class_name}.{self._name}>"
