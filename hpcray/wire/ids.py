"""Object, task and actor ids: integers with the owner's rank in the high bits.

Anyone holding an id knows whom to ask for it (``owner_of``) without a directory. A task with
``k`` returns owns the ids ``task_id .. task_id + k - 1``; an actor's id is also the id of its
token object (see ``actors/``).
"""
OWNER_SHIFT = 40


def make_id(owner, counter):
    return (owner << OWNER_SHIFT) | counter


def owner_of(object_id):
    return object_id >> OWNER_SHIFT


def made_in(object_id, ranks):
    """Whether a rank of a job of ``ranks`` ranks could have made ``object_id`` (an id from
    the bytes of a hand-made ObjectRef may name no rank)."""
    return 0 <= object_id >> OWNER_SHIFT < ranks
