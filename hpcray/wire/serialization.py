"""Turning values into objects and back.

Plain ``pickle`` (protocol 5) first, because it is fast and exact; ``cloudpickle`` only when plain
pickle refuses (functions and classes defined in ``__main__``, lambdas, closures), as Dask's
``distributed.protocol.pickle`` does. Values are pickled with out-of-band buffers, so the
bytes of numpy arrays and other buffer-protocol objects are never copied into the pickle.

Values become the object records of ``objects.py`` (``Value``, ``Inline``, ``Stored``,
``Error``). A ``Stored`` object's buffers go into a node store, which this module only
knows as a duck: ``store.write_object(buffers) -> (slot, size, parts)``, ``store.pin``,
``store.view`` (``store/node_store.py`` is one).
"""
import pickle
import traceback

import cloudpickle

from ..exceptions import (ActorDiedError, ActorUnschedulableError, HpcrayError, ObjectFreedError,
                          ObjectLostError, ObjectStoreFullError,
                          OwnerDiedError, RemoteTraceback, SerializationError,
                          TaskCancelledError, TaskError, TaskUnschedulableError)
from . import objects
from .objects import INLINE, STORED, VALUE, Value

_new = tuple.__new__


def dumps(value):
    """Pickle ``value``; fall back to cloudpickle for what plain pickle cannot do.

    Plain pickle refers to functions and classes by module and name; ``__main__`` on another
    rank is not the user's script, so anything that names ``__main__`` goes by value through
    cloudpickle instead (Dask's test, cheap because it only scans the bytes).
    """
    try:
        data = pickle.dumps(value, protocol=5)
    except Exception:
        return cloudpickle.dumps(value, protocol=5)
    if b"__main__" in data:
        return cloudpickle.dumps(value, protocol=5)
    return data


loads = pickle.loads


def dumps_function(function):
    """Functions travel by value when they live in ``__main__`` (the workers cannot import it)."""
    return cloudpickle.dumps(function, protocol=5)


def serialize_args(function_name, args, kwargs, store=None, rank=0, inline_limit=1 << 18):
    """Encode a task's arguments as one object (large buffers into the store, as a put would),
    or raise SerializationError naming the argument that failed."""
    if not args and not kwargs:
        return None
    try:
        return encode((args, kwargs), store, rank, inline_limit)
    except ObjectStoreFullError:
        raise
    except Exception:
        pass
    for position, value in enumerate(args):
        _check_picklable(value, f"argument {position} ({_short_repr(value)}) of {function_name}")
    for name, value in kwargs.items():
        _check_picklable(value, f"keyword argument {name!r} ({_short_repr(value)}) of {function_name}")
    raise SerializationError(f"could not serialize the arguments of {function_name}")


def _check_picklable(value, what):
    try:
        cloudpickle.dumps(value, protocol=5)
    except Exception as error:
        raise SerializationError(f"could not serialize {what}: {type(error).__name__}: {error}") from error


def _short_repr(value, limit=80):
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode(value, store=None, rank=0, inline_limit=1 << 18):
    """Turn ``value`` into an object record; large buffers go into ``store`` (this node's),
    written by ``rank``."""
    buffers = []
    try:
        header = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        if b"__main__" in header:
            raise pickle.PicklingError("names __main__")
    except Exception:
        buffers = []
        header = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return _new(Value, (VALUE, header))    # objects.value, without its frame (hot)
    raws = [buffer.raw() for buffer in buffers]
    total = sum(raw.nbytes for raw in raws)
    if store is None or total < inline_limit:
        return objects.inline(header, [raw.tobytes() for raw in raws])
    slot, size, parts = store.write_object(raws)
    return objects.stored(store.node_index, rank, slot, size, header, parts)


def serialize_result(value, function_name, index, where, store=None, rank=0,
                     inline_limit=1 << 18):
    """Encode one return value; an unpicklable one becomes an error object for ``get``.
    ``where()`` names the rank and host for the error (called only if there is one)."""
    try:
        return encode(value, store, rank, inline_limit)
    except ObjectStoreFullError as failure:
        return error_object(failure, function_name, where())
    except Exception as failure:
        failure = SerializationError(
            f"could not serialize return value {index} ({_short_repr(value)}) of {function_name}: "
            f"{type(failure).__name__}: {failure}")
        return error_object(failure, function_name, where())


def error_object(exc, function_name, where, tb=None):
    """Package an exception raised by a task as an Error record with its traceback text,
    headed by ``where`` (rank, host, pid)."""
    if isinstance(exc, TaskError):   # an upstream task's error passes through unchanged
        return objects.error(dumps(TaskError(exc.function_name, exc.cause_repr, exc.remote_traceback,
                                     picklable_or_none(exc.cause))))
    tb_text = "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))
    header = f"Remote traceback ({function_name} on {where}):\n"
    failure = TaskError(function_name, f"{type(exc).__name__}: {exc}", header + tb_text,
                        _transportable(exc, tb_text))
    return objects.error(dumps(failure))


def _transportable(exc, tb_text):
    """``exc`` if it survives pickling, else (as Ray does) an error that says so, with its
    message and traceback as text."""
    try:
        loads(dumps(exc))
        return exc
    except Exception as why:
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        return HpcrayError(f"Exception {name} isn't serializable: {why}.\n"
                           f"Original exception details:\n{tb_text}")


def exception_object(exc):
    """An Error record that makes ``get`` raise ``exc`` as it is."""
    return objects.error(dumps(exc))


def actor_died(actor_name, actor_id, reason, cause=None, remote_traceback=None):
    """The Error record that calls to a dead actor get."""
    return objects.error(dumps(ActorDiedError(actor_name, f"{actor_id:016x}", reason, cause,
                                              remote_traceback)))


def actor_unschedulable(class_name, actor_id, reason):
    """The Error record of an actor that its scheduling strategy keeps from any rank."""
    return objects.error(dumps(ActorUnschedulableError(
        f"actor {class_name} ({actor_id:016x}) cannot be scheduled: {reason}")))


def unschedulable(name, reason):
    """The Error record of a task that its scheduling strategy keeps from running anywhere."""
    return objects.error(dumps(TaskUnschedulableError(
        f"task {name} cannot be scheduled: {reason}")))


def cancelled(task_id):
    """The Error record of a cancelled task or call."""
    return objects.error(dumps(TaskCancelledError(f"{task_id:016x}")))


def owner_died(object_id, rank, host):
    """The Error record of an object whose owner rank died."""
    return objects.error(dumps(OwnerDiedError(
        f"object {object_id:016x} is gone: its owner, rank {rank} (host {host}), died")))


def freed(object_id):
    """The Error record left in place of an object freed on purpose."""
    return objects.error(dumps(ObjectFreedError(
        f"object {object_id:016x} was freed on purpose (internal_api.free)")))


def lost(object_id, why="it was freed, or belongs to a runtime that was shut down"):
    """The Error record of an object that is gone (``why``: the reason given)."""
    return objects.error(dumps(ObjectLostError(f"object {object_id:016x} is gone: {why}")))


def picklable_or_none(exc):
    if exc is None:
        return None
    try:
        blob = dumps(exc)
        loads(blob)
        return exc
    except Exception:
        return None


def materialize(obj, store=None):
    """Turn an object record into its value (zero-copy for stored ones on this node), or
    raise the error it holds."""
    kind = obj.kind
    if kind == VALUE:
        return loads(obj.blob)
    if kind == INLINE:                         # small: read-only, as in Ray (and as stored
        return loads(obj.header, buffers=[     # ones are), so readers may share the bytes
            buffer if type(buffer) is bytes else bytes(buffer) for buffer in obj.buffers])
    if kind == STORED:
        if store is None or obj.node != store.node_index:
            raise RuntimeError("a stored object must be fetched to this node before reading")
        parts = obj.parts
        start = store.pin(obj.slot, len(parts))    # one pin per view; restores it if spilled
        slot = obj.slot
        return loads(obj.header, buffers=[store.view(slot, start, offset, size)
                                          for offset, size in parts])
    raise_error(loads(obj.blob))


def raise_error(failure):
    if isinstance(failure, TaskError):
        dual = failure.as_instanceof_cause()
        raise dual from RemoteTraceback(failure.remote_traceback)
    if isinstance(failure, ActorDiedError) and failure.cause is not None:
        raise failure from failure.cause
    raise failure
