"""What the job is doing, as Ray's ``ray.util.state`` reports it, and ``hpcray.timeline``.

Each call asks the head of the running job for a fresh view (OBSERVE) and filters it here
with the same code ``hpcray list`` / ``hpcray summary`` use on a job directory
(``jobdir/views.py``). Ranks report what they record every quarter of a second, so, as in
Ray, a task that just ended on another rank may show in its former state for that long.
"""
import json

from ..jobdir import views
from ..launch import session
from ..wire import messages

DEFAULT_LIMIT = views.DEFAULT_LIMIT


class StateRecord(dict):
    """One record: a dict of Ray's field names, also readable as attributes
    (``task.state`` and ``task["state"]``, as Ray's state objects allow)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _snapshot(limit=None):
    return session.runtime().requests.ask(messages.observe, "snapshot",
                                          {"limit": limit, "spans": 0})


def _list(kind, filters, limit, detail):
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be positive, not {limit}")
    snapshot = _snapshot(None if kind == "tasks" else 0)
    found = views.select(views.records(snapshot, kind), filters, limit)
    return [StateRecord(item) for item in found]


def list_tasks(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
               raise_on_missing_output=True, _explain=False):
    """Tasks and actor calls of the job: unfinished ones first, then the newest ended ones
    (the head keeps the last ``HPCRAY_EVENTS_PER_RANK`` ended ones).

    Args:
        filters: Ray's ``[(key, predicate, value)]``, e.g. ``[("state", "=", "RUNNING")]``;
            predicates ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=``.
        limit: at most this many records (Ray's default, 100).
    Returns:
        A list of records with Ray's fields (``task_id``, ``name``, ``state``, ``type``,
        ``func_or_class_name``, ``actor_id``, ``node_id``, ``worker_pid``,
        ``start_time_ms``, ``end_time_ms``, ``error_type``, ``error_message``, ...) and
        ``rank``.
    Raises:
        ValueError: a malformed filter or limit.
    """
    return _list("tasks", filters, limit, detail)


def list_actors(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
                raise_on_missing_output=True, _explain=False):
    """The job's actors (``actor_id``, ``class_name``, ``state``: ``PENDING_CREATION`` /
    ``ALIVE`` / ``RESTARTING`` / ``DEAD``, ``name``, ``namespace``, ``node_id``, ``pid``,
    ``rank``, ``calls``, ``is_detached``); ``filters`` and ``limit`` as in
    :func:`list_tasks`."""
    return _list("actors", filters, limit, detail)


def list_objects(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
                 raise_on_missing_output=True, _explain=False):
    """Objects the job's ranks own (``object_id``, ``object_size``, ``task_status``,
    ``reference_type``, ``type``: DRIVER or WORKER, ``node_id``, ``rank``); each rank lists
    at most 200, sampled every status interval."""
    return _list("objects", filters, limit, detail)


def list_nodes(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
               raise_on_missing_output=True, _explain=False):
    """The job's nodes (``node_id``, ``node_ip``, ``is_head_node``, ``state``,
    ``node_name``, ``resources_total``, ``ranks``)."""
    return _list("nodes", filters, limit, detail)


def list_workers(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
                 raise_on_missing_output=True, _explain=False):
    """The driver and the worker processes of every rank (``worker_id``, ``worker_type``,
    ``pid``, ``rank``, ``node_id``, ``is_alive``, ``tasks_run``)."""
    return _list("workers", filters, limit, detail)


def summarize_tasks(address=None, timeout=None, raise_on_missing_output=True, _explain=False):
    """Ray's task summary: ``{"cluster": {"summary": {name: {"func_or_class_name",
    "type", "state_counts"}}, "total_tasks", "total_actor_tasks", "total_actor_scheduled",
    "summary_by"}}``, counting every task of the job."""
    return views.summary(_snapshot(0), "tasks")


def summarize_actors(address=None, timeout=None, raise_on_missing_output=True, _explain=False):
    """Ray's actor summary: ``{"cluster": {"summary": {class: {"class_name",
    "state_counts"}}, "total_actors", "summary_by"}}``."""
    return views.summary(_snapshot(0), "actors")


def summarize_objects(address=None, timeout=None, raise_on_missing_output=True,
                      _explain=False):
    """Ray's object summary (``total_objects``, ``total_size_mb``; no call sites)."""
    return views.summary(_snapshot(0), "objects")


def get_task(id, address=None, timeout=None, _explain=False):
    """The record of one task (its hex id), or None."""
    found = list_tasks(filters=[("task_id", "=", id)], limit=None)
    return found[0] if found else None


def get_actor(id, address=None, timeout=None, _explain=False):
    """The record of one actor (its hex id), or None."""
    found = list_actors(filters=[("actor_id", "=", id)], limit=None)
    return found[0] if found else None


def timeline(filename=None):
    """The job's tasks, actor calls, transfers between nodes and ``get`` waits as Chrome
    trace events (Ray's ``ray.timeline``): a process per rank, a thread per worker process;
    Perfetto (ui.perfetto.dev) and ``chrome://tracing`` load them.

    Args:
        filename: write the events there as JSON and return None; without it, return them.
    """
    events = session.runtime().requests.ask(messages.observe, "timeline", {})
    if filename is None:
        return events
    with open(filename, "w") as handle:
        json.dump(events, handle)
    return None
