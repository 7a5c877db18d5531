"""Objects as the runtime keeps and moves them: four named records.

A value, once serialized, is one of:

* :class:`Value`: the pickled value, no large buffers (``blob``);
* :class:`Inline`: a pickle ``header`` and its small out-of-band ``buffers`` carried along;
* :class:`Stored`: buffers written into ``node``'s object store by rank ``writer`` as object
  ``slot`` (``size`` bytes, ``parts`` = ``[(offset, nbytes), ...]``), read there zero-copy;
* :class:`Error`: a pickled exception (a ``TaskError``, an ``ObjectLostError``...) that ``get``
  raises.

Each record is a named tuple whose first field is its ``kind``, so it becomes a plain tuple
on the wire (:func:`to_wire`) and a record again on arrival (:func:`from_wire`): pickling a
class instance costs several microseconds per message, a plain tuple a fraction of one.
"""
from typing import NamedTuple

VALUE, ERROR, INLINE, STORED = 0, 1, 2, 3


class Value(NamedTuple):
    kind: int
    blob: bytes


class Error(NamedTuple):
    kind: int
    blob: bytes


class Inline(NamedTuple):
    kind: int
    header: bytes
    buffers: list


class Stored(NamedTuple):
    kind: int
    node: int           # index of the node whose store holds the bytes
    writer: int         # the rank that wrote them (two-sided copies ask it)
    slot: int           # the object's slot in that store
    size: int           # bytes in the store
    header: bytes       # the pickle, without its buffers
    parts: list         # [(offset, nbytes), ...] of each buffer in the object


_RECORDS = (Value, Error, Inline, Stored)


_new = tuple.__new__          # builds a record without the Python frame of its __new__


def value(blob):
    return _new(Value, (VALUE, blob))


def error(blob):
    return _new(Error, (ERROR, blob))


def inline(header, buffers):
    return _new(Inline, (INLINE, header, buffers))


def stored(node, writer, slot, size, header, parts):
    return Stored(STORED, node, writer, slot, size, header, parts)


def to_wire(obj):
    """The record as a plain tuple (cheap to pickle)."""
    return tuple(obj)


def from_wire(raw):
    """The record of a tuple made by :func:`to_wire` (a record passes unchanged)."""
    return _new(_RECORDS[raw[0]], raw)


def nbytes(obj):
    """Roughly how many bytes an object holds (for cache bounds)."""
    if obj.kind == STORED:
        return obj.size
    if obj.kind == INLINE:
        return len(obj.header) + sum(len(b) for b in obj.buffers)
    return len(obj.blob)
