"""Running one call (a task, an actor method, an actor's ``__init__``): deserialize, resolve
arguments, call, retry, package the results.

``execution.py`` decides *when* a task runs (its serving loop, or a ``get`` that waits) and
``actors/host.py`` when a method call runs; this module does the running. User code always
runs without the runtime lock held. The ``executor`` passed in is the rank's ``Execution``:
it knows the functions already loaded, the node's store, where errors happened
(``where``), and how to wait for borrowed refs to be registered.
"""
import traceback

from ..exceptions import RuntimeEnvSetupError, TaskError, WorkerCrashedError
from ..wire import serialization
from ..wire.serialization import error_object, serialize_result
from ..wire.specs import PLACEMENT_GROUP
from . import refcount, runtime_env
from .object_ref import ObjectRef


def execute(executor, spec, dep_objects, function=None):
    """Run ``spec``; return ``([(object_id, object), ...], contained)``: an object for each
    return value, and ``{object_id: [ids of the refs inside it]}`` (or None).

    ``function`` is what to call (an actor's bound method); by default the task's function.
    A task's ``runtime_env`` is set around all of it (loading, arguments, the call)."""
    if spec.runtime_env is not None:
        try:
            with runtime_env.applied(spec.runtime_env):
                return _execute(executor, spec, dep_objects, function)
        except RuntimeEnvSetupError as error:
            return failed(executor, spec, error), None
    return _execute(executor, spec, dep_objects, function)


def _execute(executor, spec, dep_objects, function):
    prepared = prepare(executor, spec, dep_objects, function)
    if prepared[0] is None:
        return prepared[1], None
    function, args, kwargs = prepared
    attempts = 0
    while True:
        try:
            value = function(*args, **kwargs)
            break
        except SystemExit as error:
            # Ray: sys.exit() ends the worker process; an actor whose method exits is dead
            # (ActorDiedError), a task fails with WorkerCrashedError and is retried up to
            # max_retries. Here the rank goes on; the error must not be a SystemExit itself
            # (``except RayActorError`` would miss it and the script end silently, status 0).
            if spec.actor_id is not None:
                raise ActorExit(spec, error) from None
            if _retries_left(spec, attempts):
                attempts += 1
                continue
            return exited(executor, spec, error), None
        except BaseException as error:          # fails the task, not the rank
            if _should_retry(spec, error, attempts):
                attempts += 1
                continue
            return failed(executor, spec, error), None
    if spec.stream is not None:
        return stream_out(executor, spec, value)
    return package(executor, spec, value)


def stream_out(executor, spec, value):
    """A generator task: send each item to the owner as it is yielded
    (``executor.emit_item``, False once the task is cancelled); an error raised meanwhile
    becomes the next item. Returns the end of the stream as :func:`execute` does: how many
    items there were (a cancel that interrupts it ends it as cancelled)."""
    store, rank, limit = executor.store, executor.rank, executor.inline_limit
    count = 0
    try:
        if not hasattr(value, "__next__"):
            raise TypeError(f"{spec.name} was called with num_returns={spec.stream!r} but "
                            f"returned a {type(value).__name__}, not a generator")
        for item in value:
            with refcount.capture("contained") as ids:
                obj = serialize_result(item, spec.name, count, executor.where, store, rank,
                                       limit)
            if not executor.emit_item(spec, count, obj, ids or None):
                value.close()                  # cancelled: the generator ends here
                return cancelled(spec), None
            count += 1
    except KeyboardInterrupt:                  # cancel: the task ends as cancelled
        raise
    except BaseException as error:            # fails this item: the stream ends there
        executor.emit_item(spec, count, error_object(error, spec.name, executor.where(),
                                                     error.__traceback__), None)
        count += 1
    return package(executor, spec, count)


async def stream_out_async(executor, spec, value):
    """:func:`stream_out` for an async generator (a method of an async actor that yields)."""
    store, rank, limit = executor.store, executor.rank, executor.inline_limit
    count = 0
    try:
        async for item in value:
            with refcount.capture("contained") as ids:
                obj = serialize_result(item, spec.name, count, executor.where, store, rank,
                                       limit)
            if not executor.emit_item(spec, count, obj, ids or None):
                await value.aclose()
                return cancelled(spec), None
            count += 1
    except BaseException as error:            # (a cancel too: the host answers it as such)
        executor.emit_item(spec, count, error_object(error, spec.name, executor.where(),
                                                     error.__traceback__), None)
        count += 1
    return package(executor, spec, count)


class ExitActor(SystemExit):
    """Raised by ``hpcray.actor.exit_actor()`` to end the actor running the call."""


class ActorExit(Exception):
    """An actor method called ``sys.exit()`` (or ``exit_actor()``): the actor host ends the
    actor, giving ``reason``."""

    def __init__(self, spec, system_exit):
        code = system_exit.code
        if isinstance(system_exit, ExitActor):
            reason = f"the actor exited: {spec.name} called exit_actor()"
        else:
            reason = (f"the actor exited: {spec.name} called sys.exit({code!r}) "
                      f"(exit code {code!r})")
        super().__init__(reason)
        self.reason = reason


def exited(executor, spec, system_exit):
    """The results of a task that called ``sys.exit``: WorkerCrashedError for each return."""
    tb = "".join(traceback.format_exception(type(system_exit), system_exit,
                                            system_exit.__traceback__))
    header = f"Remote traceback ({spec.name} on {executor.where()}):\n"
    code = system_exit.code
    if not isinstance(code, (int, str, type(None))):   # sys.exit(anything): keep it picklable
        code = repr(code)
    error = WorkerCrashedError(spec.name, code, header + tb)
    return _fail_all(spec, serialization.exception_object(error))


def captures_children(strategy):
    """Whether work with this strategy runs in a placement group that captures the tasks it
    submits (its actor's method calls then run with that strategy, for their children)."""
    return strategy is not None and strategy[0] == PLACEMENT_GROUP and strategy[3]


def actor_method(instance, name):
    """The bound method ``name`` of an actor instance, or None; ``__ray_ready__`` (Ray's:
    ready once the actor is built) is every actor's."""
    if name == "__ray_ready__":
        return _ready
    return getattr(instance, name, None)


def _ready():
    return True


def prepare(executor, spec, dep_objects, function=None):
    """``(function, args, kwargs)`` ready to call, or ``(None, results)`` when the task fails
    before its call (an argument's task failed, its arguments cannot be read)."""
    try:
        if function is None:
            function = executor.functions.get(spec.func_id) or _load(executor.functions, spec)
        if spec.args_blob is None and spec.args_ref is None:
            args, kwargs = (), {}
        else:
            with refcount.capture("borrowed") as borrowed:
                args, kwargs, resolved = _arguments(executor.store, spec, dep_objects)
            for object_id in resolved:         # (replaced by their values: not borrowed,
                if object_id in borrowed:      # and the owner pins them while this runs)
                    borrowed.remove(object_id)
            if borrowed:
                executor.await_borrows(borrowed)   # refs inside the arguments: register
    except TaskError as upstream:              # an argument's task failed: fail the same way
        return None, _fail_all(spec, error_object(upstream, spec.name, executor.where()))
    except BaseException as error:
        return None, _fail_all(spec, error_object(error, spec.name, executor.where()))
    return function, args, kwargs


def _load(functions, spec):
    """Unpickle a task's function once per executor (``functions``: its cache)."""
    function = functions[spec.func_id] = serialization.loads(spec.func_blob)
    return function


def cancelled(spec):
    """The results of a call cancelled while it ran: TaskCancelledError for each return."""
    return _fail_all(spec, serialization.cancelled(spec.task_id))


def failed(executor, spec, error):
    """The results of a call that raised ``error``: an error object for each return."""
    return _fail_all(spec, error_object(error, spec.name, executor.where(), error.__traceback__))


def package(executor, spec, value):
    """Encode a call's return value(s): ``(results, contained)`` as :func:`execute` returns."""
    store, rank, limit = executor.store, executor.rank, executor.inline_limit
    if spec.num_returns == 1:
        values = [value]
    else:
        try:
            values = list(value)
            if len(values) != spec.num_returns:
                raise ValueError(f"{spec.name} declared num_returns={spec.num_returns} "
                                 f"but returned {len(values)} values")
        except Exception as error:
            return _fail_all(spec, error_object(error, spec.name, executor.where())), None
    results, contained = [], {}
    for index, item in enumerate(values):
        with refcount.capture("contained") as ids:
            results.append((spec.task_id + index,
                            serialize_result(item, spec.name, index, executor.where, store,
                                             rank, limit)))
        if ids:
            contained[spec.task_id + index] = ids
    return results, contained


def _fail_all(spec, obj):
    return [(object_id, obj) for object_id in spec.return_ids()]


def _arguments(store, spec, dep_objects):
    """The task's positional and keyword arguments, top-level refs resolved to values, and
    the ids of the refs so resolved (one per occurrence)."""
    if spec.args_ref is not None:
        args, kwargs = serialization.materialize(dep_objects[spec.args_ref], store)
    elif spec.args_blob is not None:
        args, kwargs = serialization.materialize(spec.args_blob, store)
    else:
        args, kwargs = (), {}
    resolved = []
    if spec.deps:
        resolved = [value.id for value in list(args) + list(kwargs.values())
                    if isinstance(value, ObjectRef) and value.id in dep_objects]
        args = [_resolve(value, dep_objects, store) for value in args]
        kwargs = {name: _resolve(value, dep_objects, store) for name, value in kwargs.items()}
    return args, kwargs, resolved


def _resolve(value, dep_objects, store):
    if isinstance(value, ObjectRef) and value.id in dep_objects:
        return serialization.materialize(dep_objects[value.id], store)
    return value


def _retries_left(spec, attempts):
    """Whether a task whose "worker died" (sys.exit) runs again: Ray retries those up to
    ``max_retries`` (-1: forever), whatever ``retry_exceptions`` says."""
    return spec.max_retries < 0 or attempts < spec.max_retries


def _should_retry(spec, error, attempts):
    if not spec.retry_exceptions or not isinstance(error, Exception):
        return False
    if spec.max_retries >= 0 and attempts >= spec.max_retries:
        return False
    if spec.retry_exceptions is True:
        return True
    return isinstance(error, tuple(spec.retry_exceptions))
