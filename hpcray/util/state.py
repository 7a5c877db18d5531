"""What the job is doing, as Ray's ``ray.util.state`` reports it, and ``hpcray.timeline``.

Each call asks the head of the running job for a fresh view (OBSERVE) and filters it here
with the same code ``hpcray list`` / ``hpcray summary`` use on a job directory
(``jobdir/views.py``). Ranks report what they record every quarter of a second, so, as in
Ray, a task that just ended on another rank may show in its former state for that long.
"""
import fnmatch
import json
import os
import time

from ..api import get_runtime_context
from ..jobdir import layout, views
from ..launch import session
from ..wire import messages
from .placement_group import placement_group_table

DEFAULT_LIMIT = views.DEFAULT_LIMIT


class StateRecord(dict):
    """One record: a dict of Ray's field names, also readable as attributes
    (``task.state`` and ``task["state"]``, as Ray's state objects allow)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _one(lister, key, wanted):
    """The one record ``lister`` finds whose ``key`` is ``wanted``, or None (Ray's get_*)."""
    found = lister(filters=[(key, "=", wanted)], limit=None)
    return found[0] if found else None


def _observe(what, options):
    """The head's view ``what``, once it holds what the executors recorded of the work this
    process got back so far (their reports may be a quarter of a second away: wait that
    long at most, and only right after such work)."""
    rt = session.runtime()
    time.sleep(rt.events.unreported_for(time.time()))
    return rt.requests.ask(messages.observe, what, options)


def _snapshot(limit=None):
    return _observe("snapshot", {"limit": limit, "spans": 0})


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
    return _one(list_tasks, "task_id", id)


def get_actor(id, address=None, timeout=None, _explain=False):
    """The record of one actor (its hex id), or None."""
    return _one(list_actors, "actor_id", id)


def timeline(filename=None):
    """The job's tasks, actor calls, transfers between nodes and ``get`` waits as Chrome
    trace events (Ray's ``ray.timeline``): a process per rank, a thread per worker process;
    Perfetto (ui.perfetto.dev) and ``chrome://tracing`` load them.

    Args:
        filename: write the events there as JSON and return None; without it, return them.
    """
    events = _observe("timeline", {})
    if filename is None:
        return events
    with open(filename, "w") as handle:
        json.dump(events, handle)
    return None


def list_placement_groups(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None,
                          detail=False, raise_on_missing_output=True, _explain=False):
    """The job's placement groups (``placement_group_id``, ``name``, ``state``:
    ``PENDING`` / ``CREATED`` / ``REMOVED``, ``strategy``, ``bundles`` with the
    ``node_id`` and ``rank`` each is placed on)."""
    groups = []
    for group_id, entry in placement_group_table().items():
        nodes, ranks = entry.get("bundles_to_node_id", {}), entry.get("bundles_to_rank", {})
        groups.append(StateRecord(
            placement_group_id=group_id, name=entry.get("name") or "",
            state=entry.get("state"), strategy=entry.get("strategy"), is_detached=False,
            bundles=[{"bundle_id": index, "unit_resources": resources,
                      "node_id": nodes.get(index), "rank": ranks.get(index)}
                     for index, resources in entry.get("bundles", {}).items()]))
    return [StateRecord(group) for group in views.select(groups, filters, limit)]


def list_jobs(address=None, filters=None, limit=DEFAULT_LIMIT, timeout=None, detail=False,
              raise_on_missing_output=True, _explain=False):
    """This job: an hpcray job is one MPI job with one driver (``job_id``, ``status``,
    ``entrypoint``, ``start_time``, ``driver_info``)."""
    snapshot = _snapshot(0)
    job = snapshot["job"]
    record = StateRecord(
        job_id=get_runtime_context().get_job_id(), submission_id=None, type="DRIVER",
        status=job.get("state"), entrypoint=job.get("launch"),
        start_time=int(job.get("start_time", 0) * 1000), end_time=None,
        job_dir=job.get("job_dir"),
        driver_info={"id": get_runtime_context().get_worker_id(), "pid": os.getpid(),
                     "node_ip_address": (snapshot["nodes"] or [{}])[0].get("ip")})
    return [StateRecord(item) for item in views.select([record], filters, limit)]


def get_node(id, address=None, timeout=None, _explain=False):
    """The record of one node (its hex id), or None."""
    return _one(list_nodes, "node_id", id)


def get_worker(id, address=None, timeout=None, _explain=False):
    """The record of one worker process (its id), or None."""
    return _one(list_workers, "worker_id", id)


def get_placement_group(id, address=None, timeout=None, _explain=False):
    """The record of one placement group (its hex id), or None."""
    return _one(list_placement_groups, "placement_group_id", id)


def get_objects(id, address=None, timeout=None, _explain=False):
    """The records of one object (its hex id): a list, as Ray's (empty if unknown)."""
    return list_objects(filters=[("object_id", "=", id)], limit=None)


def list_logs(address=None, node_id=None, node_ip=None, glob_filter=None, timeout=None):
    """The job's log files, ``{node_id: [file name, ...]}`` (each rank's ``rank-N.log``
    in the job directory, under the node it runs on)."""
    snapshot = _snapshot(0)
    job_dir = snapshot["job"].get("job_dir")
    if job_dir is None:
        return {}
    names = sorted(os.listdir(os.path.join(job_dir, layout.LOGS)))
    by_node = {}
    for node in snapshot["nodes"]:
        if node_id not in (None, node["node_id"]) or node_ip not in (None, node.get("ip")):
            continue
        mine = [name for name in names
                if name.startswith("rank-") and int(name[5:].split(".")[0]) in node["ranks"]]
        if glob_filter is not None:
            mine = [name for name in mine if fnmatch.fnmatch(name, glob_filter)]
        by_node[node["node_id"]] = mine
    return by_node


def get_log(address=None, node_id=None, node_ip=None, filename=None, actor_id=None,
            task_id=None, pid=None, follow=False, tail=-1, timeout=None, suffix="out",
            encoding="utf-8", errors="strict", submission_id=None, attempt_number=0,
            _interval=None, filter_ansi_code=False):
    """The lines of a log file of the job (``filename`` as ``list_logs`` names it; or the
    log of the rank an actor or task ran on), as a generator of strings, as Ray's.

    Raises:
        ValueError: no such file, or nothing names one.
    """
    snapshot = _snapshot(None)
    job_dir = snapshot["job"].get("job_dir")
    if job_dir is None:
        raise ValueError("this job writes no job directory (HPCRAY_JOB_DIR=off): no logs")
    rank = None
    if actor_id is not None:
        rank = next((actor["rank"] for actor in snapshot["actors"]
                     if actor["actor_id"] == actor_id), None)
    elif task_id is not None:
        rank = next((task["rank"] for task in snapshot["tasks"]["recent"]
                     if task["task_id"] == task_id), None)
    if filename is None:
        if rank is None:
            raise ValueError("get_log needs a filename (see list_logs), or the actor_id or "
                             "task_id of work that ran")
        filename = os.path.basename(layout.rank_log_path(job_dir, rank))
    path = os.path.join(job_dir, layout.LOGS, os.path.basename(filename))
    if not os.path.exists(path):
        raise ValueError(f"no log {filename!r} in {job_dir}/logs (see list_logs())")
    with open(path, encoding=encoding, errors=errors) as handle:
        lines = handle.read().splitlines()
    if tail is not None and tail >= 0:
        lines = lines[-tail:] if tail else []
    yield from lines
