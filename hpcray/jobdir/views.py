"""Views of a job computed from its snapshot: Ray's state-API lists and summaries with Ray's
filters, and the terminal summary of ``hpcray status``.

One code path for both readers: ``hpcray.util.state`` asks the head of the running job for a
fresh snapshot and ``hpcray list`` / ``hpcray summary`` / ``hpcray status`` read
``status.json``; both then call these functions. Pure functions of plain dicts (see
``docs/job-directory.md`` for the snapshot's fields).
"""
import time

KINDS = ("tasks", "actors", "objects", "nodes", "workers")
SUMMARIES = ("tasks", "actors", "objects")
OPERATORS = ("=", "!=", ">", "<", ">=", "<=")
DEFAULT_LIMIT = 100                            # Ray's default for list_*
TASK_STATES = ("PENDING", "RUNNING", "FINISHED", "FAILED", "RETRIED")
RAY_TASK_STATE = {"PENDING": "PENDING_NODE_ASSIGNMENT"}
# An actor call waiting for its turn (the actor runs calls one at a time, or is busy).
RAY_ACTOR_TASK_STATE = {"PENDING": "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY"}


def ray_task_state(state, kind):
    """Ray's name of one of our task states, for a task of type ``kind``."""
    names = RAY_ACTOR_TASK_STATE if kind == "ACTOR_TASK" else RAY_TASK_STATE
    return names.get(state, state)


# ---------------------------------------------------------------------- lists
def records(snapshot, kind):
    """Every record of ``kind`` the snapshot holds, with Ray's field names."""
    if kind not in KINDS:
        raise ValueError(f"unknown resource {kind!r}: one of {', '.join(KINDS)}")
    if kind == "tasks":
        return list(snapshot.get("tasks", {}).get("recent", []))
    if kind == "actors":
        return list(snapshot.get("actors", []))
    if kind == "objects":
        return list(snapshot.get("objects", {}).get("list", []))
    if kind == "workers":
        return list(snapshot.get("workers", []))
    return [_node_record(node, snapshot) for node in snapshot.get("nodes", [])]


def _node_record(node, snapshot):
    job = snapshot.get("job", {})
    return {"node_id": node.get("node_id"), "node_ip": node.get("ip"),
            "is_head_node": 0 in node.get("ranks", []),
            "state": "ALIVE" if node.get("alive", True) else "DEAD",
            "node_name": node.get("host"), "resources_total": node.get("resources", {}),
            "labels": {"ranks": ",".join(str(rank) for rank in node.get("ranks", []))},
            "start_time_ms": int(job.get("start_time", 0) * 1000), "ranks": node.get("ranks", [])}


def parse_filter(text):
    """``"state=RUNNING"`` (also ``!=``, ``>``, ``<``, ``>=``, ``<=``) -> a Ray filter triple.

    Raises:
        ValueError: no operator in it.
    """
    for operator in (">=", "<=", "!=", "=", ">", "<"):
        key, found, value = text.partition(operator)
        if found and key.strip():
            return key.strip(), operator, value.strip()
    raise ValueError(f"bad filter {text!r}: write KEY=VALUE (or !=, >, <, >=, <=)")


def _matches(record, key, operator, value):
    actual = record.get(key)
    if operator in ("=", "!="):
        # as in Ray, string values compare without case ("running" finds RUNNING)
        equal = str(actual).lower() == str(value).lower()
        return equal == (operator == "=")
    try:
        actual, value = float(actual), float(value)
    except (TypeError, ValueError):
        return False
    return {">": actual > value, "<": actual < value, ">=": actual >= value,
            "<=": actual <= value}[operator]


def select(items, filters=None, limit=DEFAULT_LIMIT):
    """``items`` that pass every filter (Ray's ``[(key, op, value)]``), at most ``limit``.

    Raises:
        ValueError: a filter that is not a triple, or an unknown operator.
    """
    for triple in filters or ():
        if not isinstance(triple, (tuple, list)) or len(triple) != 3:
            raise ValueError(f"a filter is (key, predicate, value), not {triple!r}")
        key, operator, value = triple
        if operator not in OPERATORS:
            raise ValueError(f"unsupported filter predicate {operator!r}: one of "
                             f"{', '.join(OPERATORS)}")
        items = [item for item in items if _matches(item, key, operator, value)]
    return items if limit is None else items[:int(limit)]


# ---------------------------------------------------------------------- summaries
def summary(snapshot, kind):
    """Ray's ``summarize_tasks`` / ``summarize_actors`` / ``summarize_objects`` result."""
    if kind == "tasks":
        table, totals = {}, {"NORMAL_TASK": 0, "ACTOR_TASK": 0, "ACTOR_CREATION_TASK": 0}
        for row in snapshot.get("tasks", {}).get("by_function", []):
            counts = {ray_task_state(state, row.get("type")): row.get(state, 0)
                      for state in TASK_STATES[:4] if row.get(state)}
            entry = table.setdefault(row["name"], {"func_or_class_name": row["name"],
                                                   "type": row.get("type", "NORMAL_TASK"),
                                                   "state_counts": {}})
            for state, count in counts.items():
                entry["state_counts"][state] = entry["state_counts"].get(state, 0) + count
            totals[entry["type"]] = totals.get(entry["type"], 0) + sum(counts.values())
        return {"cluster": {"summary": table, "total_tasks": totals["NORMAL_TASK"],
                            "total_actor_tasks": totals["ACTOR_TASK"],
                            "total_actor_scheduled": totals["ACTOR_CREATION_TASK"],
                            "summary_by": "func_name"}}
    if kind == "actors":
        table = {}
        for actor in snapshot.get("actors", []):
            entry = table.setdefault(actor["class_name"], {"class_name": actor["class_name"],
                                                           "state_counts": {}})
            counts = entry["state_counts"]
            counts[actor["state"]] = counts.get(actor["state"], 0) + 1
        return {"cluster": {"summary": table, "total_actors": len(snapshot.get("actors", [])),
                            "summary_by": "class"}}
    if kind == "objects":
        objects = snapshot.get("objects", {})
        table = {}
        for item in objects.get("list", []):
            site = item.get("call_site") or "disabled"
            entry = table.setdefault(site, {"total_objects": 0, "total_size_mb": 0.0,
                                            "total_num_workers": 0, "total_num_nodes": 0,
                                            "task_state_counts": {}, "ref_type_counts": {}})
            entry["total_objects"] += 1
            entry["total_size_mb"] += (item.get("object_size") or 0) / (1 << 20)
            for field, key in (("task_state_counts", "task_status"),
                               ("ref_type_counts", "reference_type")):
                value = item.get(key) or "NIL"
                entry[field][value] = entry[field].get(value, 0) + 1
        return {"cluster": {"summary": table, "total_objects": objects.get("count", 0),
                            "total_size_mb": objects.get("bytes", 0) / (1 << 20),
                            "callsite_enabled": False, "summary_by": "callsite"}}
    raise ValueError(f"unknown summary {kind!r}: one of {', '.join(SUMMARIES)}")


# ---------------------------------------------------------------------- text
def human_bytes(count):
    count = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def human_seconds(seconds):
    seconds = float(seconds or 0)
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def table(rows, columns):
    """A plain text table of ``rows`` (dicts) with ``columns``."""
    cells = [[str(column).upper() for column in columns]]
    for row in rows:
        cells.append([_cell(row.get(column)) for column in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in cells)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ",".join(f"{key}={_cell(item)}" for key, item in value.items())
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


LIST_COLUMNS = {
    "tasks": ("task_id", "attempt_number", "name", "state", "type", "rank", "worker_pid",
              "duration_s", "error_type"),
    "actors": ("actor_id", "class_name", "name", "state", "rank", "pid", "calls", "restarts"),
    "objects": ("object_id", "object_size", "rank", "reference_type", "task_status", "type"),
    "nodes": ("node_id", "node_ip", "is_head_node", "state", "node_name", "ranks"),
    "workers": ("worker_id", "rank", "pid", "worker_type", "is_alive", "tasks_run"),
}


def status_text(snapshot, now=None):
    """What ``hpcray status`` prints: the job, its nodes and ranks, tasks, actors, objects
    and the latest warnings and errors."""
    job = snapshot.get("job", {})
    now = time.time() if now is None else now
    lines = []
    state = job.get("state", "?")
    exit_status = job.get("exit_status")
    age = now - snapshot.get("written", now)
    lines.append(f"======== hpcray job {job.get('id', '?')}: {state}"
                 + (f" (exit status {exit_status})" if exit_status is not None else "")
                 + " ========")
    lines.append(f"script:   {' '.join(job.get('argv') or [job.get('script', '?')])}")
    lines.append(f"launch:   {job.get('launch', '?')}  ({job.get('mode', '?')})")
    lines.append(f"ranks:    {job.get('ranks', '?')} on {job.get('nodes', '?')} node(s); "
                 f"head on {job.get('head_host', '?')}")
    started = job.get("start_time")
    if started:
        lines.append(f"started:  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}"
                     f", elapsed {human_seconds(job.get('elapsed', 0))}")
    if state == "RUNNING" and age > 10:
        lines.append(f"warning:  the last snapshot is {human_seconds(age)} old: the job may "
                     f"have been killed before it could say so")
    lines.append("")
    lines.append("Nodes")
    for node in snapshot.get("nodes", []):
        resources = node.get("resources", {})
        store = node.get("store", {})
        lines.append(f"  node {node.get('index')} {node.get('host')} ({node.get('ip')}): "
                     f"{'alive' if node.get('alive', True) else 'DEAD'}, ranks "
                     f"{','.join(str(r) for r in node.get('ranks', []))}; "
                     f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU; "
                     f"store {human_bytes(store.get('used'))} / "
                     f"{human_bytes(store.get('capacity'))}, spilled "
                     f"{human_bytes(store.get('spilled_bytes'))}")
    lines.append("")
    lines.append(table([{**rank, "rss": human_bytes(rank.get("rss")),
                         "alive": "yes" if rank.get("alive", True) else "DEAD"}
                        for rank in snapshot.get("ranks", [])],
                       ("rank", "host", "pid", "role", "alive", "cpu_percent", "rss",
                        "worker_processes", "busy", "tasks_run")))
    tasks = snapshot.get("tasks", {})
    totals = tasks.get("totals", {})
    lines.append("")
    lines.append("Tasks: " + ", ".join(f"{totals.get(state, 0)} {state.lower()}"
                                       for state in TASK_STATES))
    by_function = tasks.get("by_function", [])
    if by_function:
        lines.append(table([{**row, "mean": human_seconds(row.get("mean_seconds")),
                             "max": human_seconds(row.get("max_seconds"))}
                            for row in by_function],
                           ("name", "type", "PENDING", "RUNNING", "FINISHED", "FAILED",
                            "RETRIED", "mean", "max")))
    failed = tasks.get("failed", [])
    if failed:
        lines.append("")
        lines.append(f"Failed tasks ({len(failed)} shown, newest last)")
        for task in failed[-5:]:
            message = (task.get("error_message") or "").strip().splitlines()
            lines.append(f"  {task.get('name')} (task {task.get('task_id')}, rank "
                         f"{task.get('rank')}): {task.get('error_type')}: "
                         f"{message[-1] if message else ''}")
    actors = snapshot.get("actors", [])
    if actors:
        lines.append("")
        lines.append(f"Actors ({len(actors)})")
        lines.append(table(actors[:50], LIST_COLUMNS["actors"][1:]))
    objects = snapshot.get("objects", {})
    lines.append("")
    lines.append(f"Objects: {objects.get('count', 0)} ({human_bytes(objects.get('bytes'))}), "
                 f"spilled {human_bytes(objects.get('spilled_bytes'))}")
    events = snapshot.get("events", [])
    if events:
        lines.append("")
        lines.append("Warnings and errors (latest last)")
        for event in events[-10:]:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", 0)))
            lines.append(f"  {stamp} {event.get('level')} rank {event.get('rank')}: "
                         f"{event.get('message')}")
    if job.get("job_dir"):
        lines.append("")
        lines.append(f"Dashboard: {job['job_dir']}/dashboard.html  "
                     f"(or: hpcray dashboard {job['job_dir']})")
    return "\n".join(lines) + "\n"
