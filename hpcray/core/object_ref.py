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
        self.id = object_id
        rt = current.runtime_or_none()
        if rt is not None:
            rt.refs.note(object_id, +1)

    def __del__(self):
        try:
            rt = current.runtime_or_none()
            if rt is not None:
                rt.refs.note(self.id, -1)
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

    binary = hex

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


def rebuild(object_id):
    """Unpickling an ObjectRef (and borrowing one by id): count it, and note it for borrower
    registration."""
    ref = ObjectRef(object_id)
    refcount.unpickled(object_id)
    return ref
