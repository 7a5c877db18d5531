"""Object, task and actor ids: integers with the owner's rank in the high bits.

Anyone holding an id knows whom to ask for it (``owner_of``) without a directory. A task with
``k`` returns owns the ids ``task_id .. task_id + k - 1``; an actor's id is also the id of its
token object (see ``actors/``).
"""
OWNER_SHIFT = 40
MAX_COUNTER = (1 << OWNER_SHIFT) - 1


def make_id(owner, counter):
    return (owner << OWNER_SHIFT) | counter


def owner_of(object_id):
    return object_id >> OWNER_SHIFT


def is_valid(object_id, ranks):
    """Whether ``object_id`` could name an object of a job of ``ranks`` ranks."""
    return (isinstance(object_id, int) and not isinstance(object_id, bool) and object_id > 0
            and object_id >> OWNER_SHIFT < ranks and object_id & MAX_COUNTER != 0)
