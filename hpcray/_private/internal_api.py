"""``hpcray._private.internal_api``, as ``ray._private.internal_api``: ``free`` (Ray's docs
use it with out-of-band serialized refs)."""
from ..core.object_ref import ObjectRef
from ..launch import session


def free(object_refs, local_only=False):
    """Free these objects now, whoever still refers to them: later gets raise
    ObjectFreedError. (``local_only`` is accepted for Ray's signature: the owner frees the
    object wherever it lives.)

    Raises:
        TypeError: not an ObjectRef or a list of them.
    """
    if isinstance(object_refs, ObjectRef):
        object_refs = [object_refs]
    if not isinstance(object_refs, (list, tuple)) or not all(
            isinstance(ref, ObjectRef) for ref in object_refs):
        raise TypeError("free() expects an ObjectRef or a list of ObjectRefs")
    rt = session.runtime()
    with rt.lock:
        rt.submitter.free([ref.id for ref in object_refs])
        rt.transport.flush()



__all__ = ["free"]
