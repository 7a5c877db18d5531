"""Turning values into objects and back.

Plain ``pickle`` (protocol 5) first, because it is fast and exact; ``cloudpickle`` only when plain
pickle refuses (functions and classes defined in ``__main__``, lambdas, closures), as Dask's
``distributed.protocol.pickle`` does. Values are pickled with out-of-band buffers, so the
bytes of numpy arrays and other buffer-protocol objects are never copied into the pickle.

An object is a ``(kind, payload)`` pair:

* ``VALUE``: the pickled value (no large buffers);
* ``INLINE``: ``(header, [buffer bytes, ...])``, small out-of-band buffers carried along;
* ``STORED``: ``(node, rank, slot, size, header, [(offset, nbytes), ...])``, buffers written
  into ``node``'s object store by ``rank`` as object ``slot``; read there zero-copy;
* ``ERROR``: a pickled :class:`TaskError` (or another error) that ``get`` raises.
"""
import os
import pickle
import socket
import traceback

import cloudpickle

from .exceptions import ObjectStoreFullError, SerializationError, TaskError

VALUE = 0
ERROR = 1
INLINE = 2
STORED = 3

HOSTNAME = socket.gethostname()


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
    """Turn ``value`` into an object; large buffers go into ``store`` (this node's)."""
    buffers = []
    try:
        header = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        if b"__main__" in header:
            raise pickle.PicklingError("names __main__")
    except Exception:
        buffers = []
        header = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return (VALUE, header)
    raws = [buffer.raw() for buffer in buffers]
    total = sum(raw.nbytes for raw in raws)
    if store is None or total < inline_limit:
        return (INLINE, (header, [raw.tobytes() for raw in raws]))
    from .store import START, layout
    offsets, size = layout(raws)
    slot = store.allocate(size)                # pinned while we write
    try:
        start = int(store.slots[slot, START])
        for raw, offset in zip(raws, offsets):
            store.write(start, offset, raw)
    finally:
        store.unpin(slot)
    return (STORED, (store.node_index, rank, slot, size, header,
                     [(offset, raw.nbytes) for raw, offset in zip(raws, offsets)]))


def nbytes(obj):
    """Roughly how many bytes an object holds (for cache bounds)."""
    kind, payload = obj
    if kind == STORED:
        return payload[3]
    if kind == INLINE:
        return len(payload[0]) + sum(len(b) for b in payload[1])
    return len(payload)


def serialize_result(value, function_name, index, store=None, rank=0, inline_limit=1 << 18):
    """Encode one return value; an unpicklable one becomes an error object for ``get``."""
    try:
        return encode(value, store, rank, inline_limit)
    except ObjectStoreFullError as error:
        return error_object(error, function_name, rank_label())
    except Exception as error:
        failure = SerializationError(
            f"could not serialize return value {index} ({_short_repr(value)}) of {function_name}: "
            f"{type(error).__name__}: {error}")
        return error_object(failure, function_name, rank_label())


def rank_label():
    from . import runtime
    rank = runtime.current_rank()
    return f"rank {rank} on host {HOSTNAME} (pid {os.getpid()})"


def error_object(exc, function_name, where, tb=None):
    """Package an exception raised by a task as an ``ERROR`` object with its traceback text."""
    if isinstance(exc, TaskError):   # an upstream task's error passes through unchanged
        return (ERROR, dumps(TaskError(exc.function_name, exc.cause_repr, exc.remote_traceback,
                                       _picklable_or_none(exc.cause))))
    tb_text = "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))
    header = f"Remote traceback ({function_name} on {where}):\n"
    error = TaskError(function_name, f"{type(exc).__name__}: {exc}", header + tb_text,
                      _picklable_or_none(exc))
    return (ERROR, dumps(error))


def _picklable_or_none(exc):
    if exc is None:
        return None
    try:
        blob = dumps(exc)
        loads(blob)
        return exc
    except Exception:
        return None


def materialize(obj, store=None):
    """Turn an object into its value (zero-copy for STORED ones on this node), or raise."""
    kind, payload = obj
    if kind == VALUE:
        return loads(payload)
    if kind == INLINE:                         # small: every reader gets its own writable copy
        header, buffers = payload
        return loads(header, buffers=[bytearray(buffer) for buffer in buffers])
    if kind == STORED:
        node, _, slot, _, header, parts = payload
        if store is None or node != store.node_index:
            raise RuntimeError("a stored object must be fetched to this node before reading")
        start = store.pin(slot, len(parts))    # one pin per view; restores it if spilled
        return loads(header, buffers=[store.view(slot, start, offset, size)
                                      for offset, size in parts])
    raise_error(loads(payload))


def raise_error(error):
    from .exceptions import ActorDiedError, RemoteTraceback
    if isinstance(error, TaskError):
        dual = error.as_instanceof_cause()
        raise dual from RemoteTraceback(error.remote_traceback)
    if isinstance(error, ActorDiedError) and error.cause is not None:
        raise error from error.cause
    raise error
