"""Running one task on an executing rank: deserialize, resolve arguments, call, retry, package.

The runtime decides *when* a task runs (its worker loop, or a ``get`` that waits); this module
does the running. User code always runs without the runtime lock held.
"""
import time

from . import refs, serialization
from .exceptions import TaskError
from .object_ref import ObjectRef
from .serialization import error_object, rank_label, serialize_result


def run_task(runtime, spec, dep_objects):
    """Run one task on the calling thread and hand its results to the runtime."""
    stack = runtime.tls.__dict__.setdefault("stack", [])
    with runtime.lock:
        runtime.executing += 1
        runtime.in_user_code = True
    stack.append(spec)
    started = time.perf_counter()
    try:
        results, contained = execute(runtime, spec, dep_objects)
    finally:
        stack.pop()
        seconds = time.perf_counter() - started
        with runtime.lock:
            runtime.executing -= 1
            if runtime.executing == 0 and runtime.rank != 0:
                runtime.in_user_code = False
            runtime.finish_task(spec, results, seconds, contained)


def _fail_all(spec, obj):
    return [(object_id, obj) for object_id in spec.return_ids()]


def execute(runtime, spec, dep_objects, function=None):
    """Run ``spec``; return ``([(object_id, object), ...], contained)``: an object for each
    return value, and ``{object_id: [ids of the refs inside it]}`` (or None).

    ``function`` is what to call (an actor's bound method); by default the task's function."""
    prepared = prepare(runtime, spec, dep_objects, function)
    if prepared[0] is None:
        return prepared[1], None
    function, args, kwargs = prepared
    attempts = 0
    while True:
        try:
            value = function(*args, **kwargs)
            break
        except BaseException as error:          # SystemExit in a task fails the task, not the rank
            if _should_retry(spec, error, attempts):
                attempts += 1
                continue
            return failed(spec, error), None
    return package(runtime, spec, value)


def prepare(runtime, spec, dep_objects, function=None):
    """``(function, args, kwargs)`` ready to call, or ``(None, results)`` when the task fails
    before its call (an argument's task failed, its arguments cannot be read)."""
    try:
        if function is None:
            function = runtime.functions.get(spec.func_id)
            if function is None:
                function = serialization.loads(spec.func_blob)
                runtime.functions[spec.func_id] = function
        if spec.args_blob is None and spec.args_ref is None:
            args, kwargs = (), {}
        else:
            with refs.capture("borrowed") as borrowed:
                args, kwargs = _arguments(runtime, spec, dep_objects)
            runtime.await_borrows(borrowed)    # refs inside the arguments: register first
    except TaskError as upstream:              # an argument's task failed: fail the same way
        return None, _fail_all(spec, error_object(upstream, spec.name, rank_label()))
    except BaseException as error:
        return None, _fail_all(spec, error_object(error, spec.name, rank_label()))
    return function, args, kwargs


def failed(spec, error):
    """The results of a call that raised ``error``: an error object for each return."""
    return _fail_all(spec, error_object(error, spec.name, rank_label(), error.__traceback__))


def package(runtime, spec, value):
    """Encode a call's return value(s): ``(results, contained)`` as :func:`execute` returns."""
    store, rank, limit = runtime.store, runtime.rank, runtime.config.inline_limit
    if spec.num_returns == 1:
        values = [value]
    else:
        try:
            values = list(value)
            if len(values) != spec.num_returns:
                raise ValueError(f"{spec.name} declared num_returns={spec.num_returns} "
                                 f"but returned {len(values)} values")
        except Exception as error:
            return _fail_all(spec, error_object(error, spec.name, rank_label())), None
    results, contained = [], {}
    for index, item in enumerate(values):
        with refs.capture("contained") as ids:
            results.append((spec.task_id + index,
                            serialize_result(item, spec.name, index, store, rank, limit)))
        if ids:
            contained[spec.task_id + index] = ids
    return results, contained


def _arguments(runtime, spec, dep_objects):
    """The task's positional and keyword arguments, top-level refs resolved to values."""
    if spec.args_ref is not None:
        args, kwargs = serialization.materialize(dep_objects[spec.args_ref], runtime.store)
    elif spec.args_blob is not None:
        args, kwargs = serialization.materialize(spec.args_blob, runtime.store)
    else:
        args, kwargs = (), {}
    if spec.deps:
        store = runtime.store
        args = [_resolve(value, dep_objects, store) for value in args]
        kwargs = {name: _resolve(value, dep_objects, store) for name, value in kwargs.items()}
    return args, kwargs


def _resolve(value, dep_objects, store):
    if isinstance(value, ObjectRef) and value.id in dep_objects:
        return serialization.materialize(dep_objects[value.id], store)
    return value


def _should_retry(spec, error, attempts):
    if not spec.retry_exceptions or not isinstance(error, Exception):
        return False
    if spec.max_retries >= 0 and attempts >= spec.max_retries:
        return False
    if spec.retry_exceptions is True:
        return True
    return isinstance(error, tuple(spec.retry_exceptions))
