"""What the job's actors are doing, as Ray's ``ray.util.state`` reports it."""
from ..launch import session
from ..wire import messages


def list_actors(filters=None, detail=False):
    """One dict per actor of this session (``actor_id``, ``class_name``, ``state``:
    ``PENDING_CREATION`` / ``ALIVE`` / ``DEAD``, ``name``, ``namespace``, ``rank``).

    ``filters`` is Ray's list of ``(key, "=", value)`` triples (``"!="`` works too)."""
    actors = session.runtime().requests.ask(messages.list_actors)
    for key, op, value in filters or ():
        if op not in ("=", "!="):
            raise ValueError(f"unsupported filter operator {op!r} (use '=' or '!=')")
        actors = [a for a in actors if (str(a.get(key)) == str(value)) == (op == "=")]
    return actors
