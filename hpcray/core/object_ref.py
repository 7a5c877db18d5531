"""``ObjectRef``: a handle to an object that exists, or will once its task finishes."""
import asyncio

from . import current, refcount


class ObjectRef:
    """A reference to an object owned by one rank (the one that created it or submitted its task).

    Hashable and picklable; pass it to tasks (a top-level argument is replaced by its value
    before the task runs; one nested in a container arrives as a ref), ``get`` it, ``wait`` on
    it, turn it into a ``concurrent.futures.Future`` with :meth:`future`, or ``await`` it.
    """
    __slots__ = ("id", "__weakref__")

    def __init__(self, object_id):
        """``ObjectRef(ref.binary())`` rebuilds a ref, as Ray's ``ray.ObjectRef(binary)`` does.

        Raises:
            TypeError: ``object_id`` is neither ``bytes`` nor an id.
            ValueError: bytes of the wrong length (an id is ``ID_SIZE`` bytes, as in Ray).

        Bytes of the right length that name no object of this job are accepted, as Ray
        accepts them; ``get`` on such a ref raises ObjectLostError (a task that takes it as
        an argument fails with it), and ``wait`` counts it as ready, as for any lost object.
        """
        if type(object_id) is not int:         # internal callers pass ints: keep them fast
            object_id = _id_from_binary(object_id)
        self.id = object_id
        current.note_ref(object_id, +1)

    def __del__(self):
        try:
            current.note_ref(self.id, -1)
        except Exception:   # interpreter shutdown
            pass

    def __reduce__(self):
        if refcount.pickled(self.id):          # outside a tracked path: keep it for good
            rt = current.runtime_or_none()
            if rt is not None:
                rt.refs.note_escape(self.id)
        return (rebuild, (self.id,))

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def hex(self):
        """The object id as 16 hex digits (owner rank in the top 24 bits)."""
        return f"{self.id:016x}"

    def binary(self):
        """The object id as ``ID_SIZE`` bytes: ``ObjectRef(ref.binary()) == ref``."""
        return self.id.to_bytes(ID_SIZE, "big")

    @classmethod
    def from_binary(cls, binary):
        """The ref of ``binary`` (:meth:`binary`), as Ray's ``ObjectRef.from_binary``."""
        return cls(binary)

    @classmethod
    def from_hex(cls, hex_id):
        """The ref of ``hex_id`` (:meth:`hex`), as Ray's ``ObjectRef.from_hex``.

        Raises:
            ValueError: not the hex digits of an object id.
        """
        try:
            object_id = int(hex_id, 16)
        except (TypeError, ValueError):
            raise ValueError(f"ObjectRef.from_hex takes the hex digits of an object id "
                             f"(ref.hex()), got {hex_id!r}") from None
        if not 0 <= object_id < 1 << 64:
            raise ValueError(f"{hex_id!r} is not the hex of an hpcray object id")
        return cls(object_id)

    def task_id(self):
        return f"{self.id:016x}"

    def __repr__(self):
        return f"ObjectRef({self.hex()})"

    def future(self):
        """Return a ``concurrent.futures.Future`` that completes with the object's value."""
        return current.runtime().access.future(self)

    def __await__(self):
        return asyncio.wrap_future(self.future()).__await__()

    def as_future(self):
        """Return an ``asyncio.Future`` for this object (for use inside a running event loop)."""
        return asyncio.wrap_future(self.future())


# Bytes of a binary id: Ray's size (``ray.ObjectRef(b"x" * 28)`` is well formed there too).
# hpcray's ids are ints below 2**64, stored big-endian in the last 8 of these bytes.
ID_SIZE = 28


def _id_from_binary(binary):
    """The int id of ``ObjectRef(binary)``, with the checks of Ray's ``check_id`` (bytes kept
    as the id once reached the runtime, whose progress thread then died on them)."""
    if not isinstance(binary, bytes):
        raise TypeError(f"ObjectRef() takes the bytes of an object id (ref.binary()), "
                        f"got {type(binary).__name__}")
    if len(binary) != ID_SIZE:
        raise ValueError(f"ObjectRef() takes the {ID_SIZE} bytes of an object id "
                         f"(ref.binary()), got {len(binary)} bytes")
    return int.from_bytes(binary, "big")


def rebuild(object_id):
    """Unpickling an ObjectRef (and borrowing one by id): count it, and note it for borrower
    registration."""
    ref = ObjectRef(object_id)
    refcount.unpickled(object_id)
    return ref
