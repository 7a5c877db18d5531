"""The head's view of the whole job: what every rank recorded (``core/events.py``), added up
for the state API, the timeline, ``hpcray status`` and the dashboard.

::

    every rank: EventLog --(EVENTS, every 0.25 s at most)--> JobTable.merge (head, lock held)
    util.state / timeline --(OBSERVE)--> Observer.view --> JobTable (REPLY)
    writer thread, every HPCRAY_STATUS_INTERVAL s: Observer.snapshot (lock held, copies)
        --> status.json + status.js (lock not held) --> dashboard.html reads them
    the end: Observer.close(exit status) --> the final snapshot, report.txt, dashboard.html

:class:`JobTable` is pure state (no MPI, no runtime; ``tests/test_state_holders.py`` drives
it). Memory is bounded: a ring of spans per rank, the last finished tasks, and per-function
aggregates that count everything.
"""
import itertools
import os
import sys
import threading
import time
from collections import deque

from ..core import events as ev
from ..jobdir import layout, page, views
from .directory import answer

SERIES_POINTS = 600            # samples kept per series (one per snapshot)
NOTES_KEPT = 200
FAILED_KEPT = 50
SLOWEST_KEPT = 10
SNAPSHOT_TASKS = 1000          # task records a written snapshot holds
SNAPSHOT_SPANS = 3000          # timeline spans a written snapshot holds
PENDING, RUNNING, FINISHED, FAILED = "PENDING", "RUNNING", "FINISHED", "FAILED"
OPEN = "OPEN"                  # submitted and not ended: PENDING or RUNNING (see counts)
_NAMED = (ev.SUBMITTED, ev.FINISHED, ev.RETRIED, ev.ENDED)
_CATEGORY = {ev.NORMAL_TASK: "task", ev.ACTOR_TASK: "actor_task",
             ev.ACTOR_CREATION_TASK: "actor_creation"}
_SPAN_START = 5                # a span: (ENDED event, rank); the event's start time


class OpenTask:
    """A task its owner reported submitted and not ended yet."""
    __slots__ = ("name", "actor_id", "submitted")

    def __init__(self, name, actor_id, submitted):
        self.name = name
        self.actor_id = actor_id
        self.submitted = submitted


class FunctionStats:
    """One function's (or method's) tasks: how many ended each way, how many are open, how
    long they ran."""
    __slots__ = ("type", "counts", "total", "longest", "timed")

    def __init__(self, kind):
        self.type = kind
        self.counts = {OPEN: 0, FINISHED: 0, FAILED: 0, "RETRIED": 0}
        self.total = self.longest = 0.0
        self.timed = 0


def _ms(seconds):
    return None if seconds is None else int(seconds * 1000)


def _short(name, actor_id):
    """Ray names a task by its function's name ("f", not "module.f")."""
    return name.rpartition(".")[2] if actor_id is None else name


class JobTable:
    """Every rank's events added up. Ranks add short work up before they send
    (``core/events.py``), so merging costs the same whatever the task rate; Ray's task
    records are made only when asked for (``task_records``).

    Counts: a task's end is counted from its owner's report (FINISHED, FAILED, or DONE for
    short ones); ``open`` holds the tasks reported submitted and not ended; what runs now
    is each executing rank's latest RUNNING report, so PENDING and RUNNING are worked out
    when asked. ``node_id(rank)``: the id of a rank's node; ``spans_per_rank``: the ring of
    each rank's timeline; ``tasks_kept``: ended tasks listed by ``task_records``."""

    def __init__(self, size, node_id, spans_per_rank=20000, tasks_kept=20000):
        self.node_id = node_id
        self.tasks_kept = tasks_kept
        self.start = time.time()
        self.spans = [deque(maxlen=spans_per_rank) for _ in range(size)]
        self.loads = [{} for _ in range(size)]
        self.forget()

    def forget(self):
        """A new session: its tasks and actors start from nothing (the timeline's past and
        the ranks' loads stay)."""
        size = len(self.spans)
        self.open = {}                         # task_id -> OpenTask
        self.running = [[] for _ in range(size)]   # rank -> [(task_id, name, actor_id, pid,
        #                                            start)] running there, as last reported
        self.ended = deque(maxlen=self.tasks_kept)  # (task_id, name, actor_id, end, failure,
        #                                             submitted) of ended tasks, oldest first
        self.executed = {}                     # task_id -> (ENDED event, rank), the last ones
        self.executed_order = deque()
        self.attempts = {}                     # task_id -> attempts beyond the first
        self.functions = {}                    # name -> FunctionStats
        self.histogram = [0] * (len(ev.DURATION_BOUNDS) + 1)
        self.failed = deque(maxlen=FAILED_KEPT)    # entries of ``ended`` that failed
        self.slowest = []                      # (seconds, ENDED event, rank), longest first
        self.calls = {}                        # actor_id -> calls served
        self.actor_pids = {}                   # actor_id -> (rank, pid) where it was built
        self.restarts = {}                     # actor_id -> times it was built again
        self.notes = deque(maxlen=NOTES_KEPT)

    # ------------------------------------------------------------------ merging
    def merge(self, rank, batch):
        """Add one rank's EVENTS."""
        for event in batch:
            kind = event[0]
            if kind in _NAMED and event[3] is None:
                event = event[:2] + (_short(event[2], None),) + event[3:]
            if kind == ev.FINISHED:
                _, task_id, name, actor_id, when, failure, submitted = event
                self._ended(task_id, name, actor_id, when, failure, submitted)
            elif kind == ev.DONE:
                for name, (task_id, actor_id, count) in event[1].items():
                    self._stats(_short(name, actor_id), task_id, actor_id) \
                        .counts[FINISHED] += count
            elif kind == ev.RECENT:
                ended = self.ended
                for task_id, name, actor_id, end, submitted in event[1]:
                    ended.append((task_id, _short(name, actor_id), actor_id, end, None,
                                  submitted))
            elif kind == ev.SUBMITTED:
                _, task_id, name, actor_id, when = event
                if task_id not in self.open:
                    self.open[task_id] = OpenTask(name, actor_id, when)
                    self._stats(name, task_id, actor_id).counts[OPEN] += 1
            elif kind == ev.TIMING:
                self._timing(event[1])
            elif kind == ev.SPANS:
                for span in event[1]:
                    if span[3] is None:
                        span = span[:2] + (_short(span[2], None),) + span[3:]
                    self._span(span, rank)
            elif kind == ev.RUNNING:
                self.running[rank] = [(task_id, _short(name, actor_id), actor_id, pid, start)
                                      for task_id, name, actor_id, pid, start in event[1]]
            elif kind == ev.ENDED:
                self._span(event, rank)
                if event[1] == event[3]:       # an actor's construction
                    self._built(event[3], rank, event[4])
            elif kind == ev.RETRIED:
                self._retried(event)
            elif kind == ev.TRANSFER:
                _, object_id, nbytes, from_node, to_node, start, end = event
                name = (f"object {object_id:x} ({views.human_bytes(nbytes)}, node "
                        f"{from_node} -> {to_node})")
                self.spans[rank].append(((kind, None, name, "transfer",
                                          self.loads[rank].get("pid"), start, end, None), rank))
            elif kind == ev.WAITED:
                _, pid, count, start, end = event
                name = f"get ({count} object{'s' * (count != 1)})"
                self.spans[rank].append(((kind, None, name, "get", pid, start, end, None), rank))
            elif kind == ev.NOTE:
                _, when, level, message = event
                self.notes.append({"time": when, "level": level, "rank": rank,
                                   "message": message})
            elif kind == ev.LOAD:
                self.loads[rank] = dict(event[2], sampled=event[1])

    def _stats(self, name, task_id, actor_id):
        stats = self.functions.get(name)
        if stats is None:
            kind = ev.NORMAL_TASK if actor_id is None else ev.task_type(task_id, actor_id)
            stats = self.functions[name] = FunctionStats(kind)
        return stats

    def _ended(self, task_id, name, actor_id, when, failure, submitted):
        """A task is over, as its owner says (counted here)."""
        task = self.open.pop(task_id, None)
        stats = self._stats(name, task_id, actor_id)
        if task is not None:
            stats.counts[OPEN] -= 1
            submitted = submitted or task.submitted
        stats.counts[FINISHED if failure is None else FAILED] += 1
        entry = (task_id, name, actor_id, when, failure, submitted)
        self.ended.append(entry)
        if failure is not None:
            self.failed.append(entry)

    def _timing(self, timing):
        histogram = self.histogram
        for name, (task_id, actor_id, count, seconds, longest, buckets, calls) in \
                timing.items():
            stats = self._stats(_short(name, actor_id), task_id, actor_id)
            stats.timed += count
            stats.total += seconds
            if longest > stats.longest:
                stats.longest = longest
            for index, number in enumerate(buckets):
                histogram[index] += number
            for actor, served in calls.items():
                self.calls[actor] = self.calls.get(actor, 0) + served

    def _span(self, event, rank):
        """A task's span (an ENDED event) on ``rank``: the timeline, and where it ran."""
        self.spans[rank].append((event, rank))
        task_id = event[1]
        executed = self.executed
        if task_id not in executed:
            self.executed_order.append(task_id)
            if len(self.executed_order) > self.tasks_kept:
                executed.pop(self.executed_order.popleft(), None)
        executed[task_id] = (event, rank)
        seconds = event[6] - event[5]
        slowest = self.slowest
        if len(slowest) < SLOWEST_KEPT or seconds > slowest[-1][0]:
            slowest.append((seconds, event, rank))
            slowest.sort(key=lambda item: -item[0])
            del slowest[SLOWEST_KEPT:]

    def _built(self, actor_id, rank, pid):
        """An actor is built in process ``pid`` of ``rank``: once more somewhere else is a
        restart (its process or its rank died)."""
        where = self.actor_pids.get(actor_id)
        if where is not None and where != (rank, pid):
            self.restarts[actor_id] = self.restarts.get(actor_id, 0) + 1
        self.actor_pids[actor_id] = (rank, pid)

    def _retried(self, event):
        _, task_id, name, actor_id, when, why = event
        self._stats(name, task_id, actor_id).counts["RETRIED"] += 1
        self.attempts[task_id] = self.attempts.get(task_id, 0) + 1
        self.notes.append({"time": when, "level": "WARNING", "rank": None,
                           "message": f"{name} (task {task_id:016x}) retried: {why}"})

    def abandon_unfinished(self):
        """The job ended: its unfinished tasks will never finish (they count as failed)."""
        now = time.time()
        for task_id, task in list(self.open.items()):
            self._ended(task_id, task.name, task.actor_id, now,
                        ("JOB_ENDED", "the job ended before this task finished: it was "
                                      "abandoned"), task.submitted)
        self.running = [[] for _ in self.running]

    # ------------------------------------------------------------------ reading
    def _running_ids(self):
        """task_id -> (rank, entry) of the work the executors last said runs, less what has
        ended since (an executor's next report may be a quarter of a second away)."""
        ended = {entry[0] for entry in self.ended}
        return {entry[0]: (rank, entry) for rank, entries in enumerate(self.running)
                for entry in entries
                if entry[0] not in ended and entry[0] not in self.executed}

    def _record(self, task_id, name, actor_id, state, submitted=None, end=None,
                failure=None, where=None):
        """Ray's ``list_tasks`` record, joining what the owner and the executor said
        (``where``: ``(rank, pid, start)`` of a running task)."""
        rank = pid = start = None
        done = self.executed.get(task_id)
        if where is not None:
            rank, pid, start = where
        elif done is not None:
            event, rank = done
            pid, start, end = event[4], event[5], end or event[6]
            if failure is None and state == FAILED:
                failure = event[7]
        kind = ev.NORMAL_TASK if actor_id is None else ev.task_type(task_id, actor_id)
        return {"task_id": f"{task_id:016x}", "attempt_number": self.attempts.get(task_id, 0),
                "name": name, "state": views.ray_task_state(state, kind), "type": kind,
                "func_or_class_name": name.rpartition(".")[0]
                if kind == ev.ACTOR_CREATION_TASK else name,
                "actor_id": None if actor_id is None else f"{actor_id:016x}",
                "node_id": None if rank is None else self.node_id(rank),
                "worker_pid": pid, "rank": rank, "creation_time_ms": _ms(submitted),
                "start_time_ms": _ms(start), "end_time_ms": _ms(end),
                "duration_s": (end - start) if start and end else None,
                "error_type": None if failure is None else failure[0],
                "error_message": None if failure is None else failure[1]}

    def _ended_record(self, entry):
        task_id, name, actor_id, end, failure, submitted = entry
        return self._record(task_id, name, actor_id, FINISHED if failure is None else FAILED,
                            submitted, end, failure)

    def task_records(self, limit=None):
        """Ray's task records: running ones first, then pending ones, then the newest
        ended ones."""
        running = self._running_ids()
        records = []
        for task_id, (rank, (_, name, actor_id, pid, start)) in running.items():
            task = self.open.get(task_id)
            records.append(self._record(task_id, name, actor_id, RUNNING,
                                        task.submitted if task else None,
                                        where=(rank, pid, start)))
        for task_id, task in self.open.items():
            if task_id not in running:         # (ran, if its executor said it ended)
                records.append(self._record(task_id, task.name, task.actor_id,
                                            RUNNING if task_id in self.executed else PENDING,
                                            task.submitted))
        for entry in reversed(self.ended):
            if limit is not None and len(records) >= limit:
                break
            records.append(self._ended_record(entry))
        return records if limit is None else records[:limit]

    def by_function(self):
        """Per function: PENDING, RUNNING, FINISHED, FAILED, RETRIED and times."""
        running_now = {}
        open_running = {}
        for task_id, (_, entry) in self._running_ids().items():
            running_now[entry[1]] = running_now.get(entry[1], 0) + 1
            if task_id in self.open:
                open_running[entry[1]] = open_running.get(entry[1], 0) + 1
        for task_id, task in self.open.items():     # ended where it ran; its owner has
            if task_id in self.executed:            # not said so yet: still running
                running_now[task.name] = running_now.get(task.name, 0) + 1
                open_running[task.name] = open_running.get(task.name, 0) + 1
        table = []
        for name, stats in self.functions.items():
            counts = stats.counts
            table.append({"name": name, "type": stats.type,
                          "PENDING": max(counts[OPEN] - open_running.get(name, 0), 0),
                          "RUNNING": running_now.get(name, 0), "FINISHED": counts[FINISHED],
                          "FAILED": counts[FAILED], "RETRIED": counts["RETRIED"],
                          "total_seconds": stats.total, "max_seconds": stats.longest,
                          "mean_seconds": stats.total / stats.timed if stats.timed else None})
        for name, count in running_now.items():     # (running, not reported submitted)
            if name not in self.functions:
                table.append({"name": name, "type": ev.NORMAL_TASK, "PENDING": 0,
                              "RUNNING": count, "FINISHED": 0, "FAILED": 0, "RETRIED": 0,
                              "total_seconds": 0.0, "max_seconds": 0.0, "mean_seconds": None})
        table.sort(key=lambda entry: -sum(entry[state] for state in views.TASK_STATES[:4]))
        return table

    def totals(self):
        totals = dict.fromkeys(views.TASK_STATES, 0)
        for row in self.by_function():
            for state in views.TASK_STATES:
                totals[state] += row[state]
        return totals

    def tasks_view(self, limit):
        slowest = [self._record(event[1], event[2], event[3], FINISHED if event[7] is None
                                else FAILED, end=event[6], failure=event[7])
                   for _, event, _ in self.slowest]
        return {"totals": self.totals(), "by_function": self.by_function(),
                "durations": {"bounds": list(ev.DURATION_BOUNDS),
                              "counts": list(self.histogram)},
                "slowest": slowest,
                "failed": [self._ended_record(entry) for entry in self.failed],
                "recent": self.task_records(limit)}

    def spans_view(self, limit=None):
        """The timeline's spans, oldest first: ``{name, cat, rank, pid, t, dur, ok}`` with
        ``t`` in seconds since the job's start."""
        if limit is not None and limit <= 0:
            return []
        spans = itertools.chain.from_iterable(
            ring if limit is None else itertools.islice(reversed(ring), limit)
            for ring in self.spans)
        newest = sorted(spans, key=lambda span: span[0][_SPAN_START])
        if limit is not None:
            newest = newest[-limit:]
        origin = self.start
        listed = []
        for event, rank in newest:
            kind, task_id, name, fourth, pid, start, end, failure = event
            if kind == ev.ENDED:
                category = _CATEGORY[ev.NORMAL_TASK if fourth is None
                                     else ev.task_type(task_id, fourth)]
            else:
                category = fourth              # (transfers and gets carry theirs)
            listed.append({"name": name, "cat": category, "rank": rank, "pid": pid,
                           "t": start - origin, "dur": max(end - start, 0.0),
                           "ok": failure is None})
        return listed

    def trace_events(self, hosts):
        """Chrome trace events (``ray.timeline``'s format): a process per rank, a thread per
        worker process, complete ("X") events in microseconds."""
        trace, named = [], set()
        for span in self.spans_view():
            rank, pid = span["rank"], span["pid"] or 0
            if rank not in named:
                named.add(rank)
                trace.append({"name": "process_name", "ph": "M", "pid": rank, "tid": 0,
                              "args": {"name": f"rank {rank} ({hosts[rank]})"}})
                trace.append({"name": "process_sort_index", "ph": "M", "pid": rank,
                              "tid": 0, "args": {"sort_index": rank}})
            if (rank, pid) not in named:
                named.add((rank, pid))
                trace.append({"name": "thread_name", "ph": "M", "pid": rank, "tid": pid,
                              "args": {"name": f"pid {pid}"}})
            trace.append({"cat": span["cat"], "name": span["name"], "ph": "X",
                          "ts": span["t"] * 1e6, "dur": span["dur"] * 1e6, "pid": rank,
                          "tid": pid, "cname": "good" if span["ok"] else "terrible",
                          "args": {"rank": rank, "pid": pid, "ok": span["ok"]}})
        return trace


class Observer:
    """The head's role that answers OBSERVE and takes in EVENTS; on rank 0 only.

    Collaborators: the runtime ``lock``, ``job`` (JobView), ``config``, ``send``, the actor
    ``directory``, and ``job_info`` (what the launcher knows of the job: script, argv,
    launch command, mode)."""

    def __init__(self, lock, job, config, send, directory, job_info, own_events=None):
        self.lock = lock
        self.own_events = own_events           # the head's EventLog
        self.job = job
        self.config = config
        self.send = send
        self.directory = directory
        self.job_info = dict(job_info)
        self.job_dir = job.job_dir
        self.table = JobTable(job.size, self.node_of_rank, config.events_per_rank,
                              config.events_per_rank)
        self.series = {"t": deque(maxlen=SERIES_POINTS), "busy": deque(maxlen=SERIES_POINTS),
                       "cpu": {}, "rss": {}, "store_used": {}}
        self.dead = {}                         # rank -> how it died
        self.death_causes = {}                 # actor_id -> why it died (text, made once)
        self.state = "RUNNING"
        self.exit_status = None
        self._writer = None
        self._stop = threading.Event()
        self.write_failed = False

    def describe(self, **info):
        """What the launcher learnt of the job since (script, argv, mode)."""
        self.job_info.update(info)

    def node_of_rank(self, rank):
        return self.job.node_id(self.job.node_of[rank])

    # ------------------------------------------------------------------ messages
    def on_events(self, rank, batch):
        """EVENTS: what a rank recorded (the head's own arrive by ``Runtime.events_sink``)."""
        self.table.merge(rank, batch)

    def on_observe(self, token, what, options):
        """OBSERVE: a view of the job (``view``), answered by REPLY."""
        answer(self.send, token, self.view, what, options)

    def view(self, what, options):
        """``"snapshot"`` (options: ``limit``, the task records wanted) or ``"timeline"``."""
        own = self.own_events
        if own is not None and own.has_news():     # (the driver's own, up to this moment)
            self.table.merge(0, own.take(time.monotonic()))
        if what == "timeline":
            return self.table.trace_events(self.job.host_of)
        if what == "snapshot":
            return self.snapshot(options.get("limit"), options.get("spans", SNAPSHOT_SPANS))
        raise ValueError(f"unknown view {what!r}")

    def on_rank_dead(self, rank, how):
        self.dead[rank] = how
        self.table.notes.append({"time": time.time(), "level": "ERROR", "rank": rank,
                                 "message": f"rank {rank} (host {self.job.host_of[rank]}) "
                                            f"died: {how}"})

    def forget(self):
        self.table.forget()
        self.death_causes.clear()

    # ------------------------------------------------------------------ the snapshot
    def snapshot(self, task_limit=SNAPSHOT_TASKS, span_limit=SNAPSHOT_SPANS, sample=False):
        """The job as ``docs/job-directory.md`` describes it (lock held); ``sample``: add
        this moment to the series over time (the writer's snapshots, one per interval)."""
        job, table, now = self.job, self.table, time.time()
        loads = table.loads
        ranks, workers, objects = [], [], []
        node_store = {}
        for rank in range(job.size):
            load = loads[rank]
            alive = rank not in self.dead
            ranks.append({"rank": rank, "node": job.node_of[rank], "host": job.host_of[rank],
                          "pid": job.pids[rank], "alive": alive,
                          "role": "head" if rank == 0 else "worker",
                          "resources": job.capacities.get(rank, {}),
                          "worker_processes": len(load.get("workers", ())),
                          "busy": load.get("busy", 0), "cpu_percent": load.get("cpu", 0.0),
                          "rss": load.get("rss", 0), "tasks_run": load.get("tasks_run", 0)})
            for pid, busy, runs in load.get("workers", ()):
                workers.append({"worker_id": f"{rank:04x}{pid:012x}", "rank": rank,
                                "pid": pid, "is_alive": alive, "worker_type": "WORKER",
                                "node_id": self.node_of_rank(rank), "busy": bool(busy),
                                "tasks_run": runs})
            if "store" in load:
                node_store[job.node_of[rank]] = load["store"]
            for item in load.get("objects", ()):
                objects.append(dict(item, node_id=self.node_of_rank(rank),
                                    type="DRIVER" if rank == 0 else "WORKER"))
        workers.insert(0, {"worker_id": f"{0:04x}{job.pids[0] or 0:012x}", "rank": 0,
                           "pid": job.pids[0], "is_alive": True, "worker_type": "DRIVER",
                           "node_id": self.node_of_rank(0), "busy": False, "tasks_run": 0})
        nodes = []
        for index, leader in enumerate(job.node_leaders):
            members = job.ranks_on(index)
            resources = {}
            for rank in members:
                for name, amount in job.capacities.get(rank, {}).items():
                    if not name.startswith("node:"):
                        resources[name] = resources.get(name, 0) + amount
            store = node_store.get(index, {})
            nodes.append({"node_id": job.node_id(index), "index": index,
                          "host": job.host_of[leader], "ip": loads[leader].get("ip"),
                          "ranks": members,
                          "alive": any(rank not in self.dead for rank in members),
                          "resources": resources, "store": store})
        series = self._series(ranks, node_store, now, sample)
        actors = []
        for record, error in self.directory.list_actors(with_errors=True):
            actor_id = int(record["actor_id"], 16)
            if error is not None:
                record["death_cause"] = self.death_causes.get(actor_id) or \
                    self.death_causes.setdefault(actor_id, ev.describe_error(error)[1])
            _, pid = table.actor_pids.get(actor_id, (None, None))
            actors.append(dict(record, pid=pid, calls=table.calls.get(actor_id, 0),
                               restarts=table.restarts.get(actor_id, 0),
                               node_id=None if record["rank"] is None
                               else self.node_of_rank(record["rank"])))
        owned = [load.get("owned", (0, 0)) for load in loads]
        return {
            "version": 1, "written": now,
            "job": dict(self.job_info, ranks=job.size, nodes=len(job.node_leaders),
                        head_host=job.host, start_time=table.start,
                        elapsed=now - table.start, state=self.state,
                        exit_status=self.exit_status, job_dir=self.job_dir),
            "nodes": nodes, "ranks": ranks, "series": series,
            "tasks": table.tasks_view(task_limit), "actors": actors,
            "objects": {"count": sum(count for count, _ in owned),
                        "bytes": sum(size for _, size in owned),
                        "spilled_bytes": sum(store.get("spilled_bytes", 0)
                                             for store in node_store.values()),
                        "list": objects},
            "workers": workers, "timeline": table.spans_view(span_limit),
            "events": list(table.notes)}

    def _series(self, ranks, node_store, now, sample):
        series = self.series
        if sample:
            self._add_sample(ranks, node_store, now)
        return {"t": list(series["t"]), "busy": list(series["busy"]),
                **{name: {key: list(values) for key, values in series[name].items()}
                   for name in ("cpu", "rss", "store_used")}}

    def _add_sample(self, ranks, node_store, now):
        series = self.series
        series["t"].append(now - self.table.start)
        series["busy"].append(sum(rank["busy"] for rank in ranks))
        for rank in ranks:
            key = str(rank["rank"])
            series["cpu"].setdefault(key, deque(maxlen=SERIES_POINTS)).append(
                rank["cpu_percent"])
            series["rss"].setdefault(key, deque(maxlen=SERIES_POINTS)).append(rank["rss"])
        for node, store in node_store.items():
            series["store_used"].setdefault(str(node), deque(maxlen=SERIES_POINTS)).append(
                store.get("used", 0))

    # ------------------------------------------------------------------ writing
    def start_writing(self):
        """Write the page now and a snapshot every status interval (a thread of its own)."""
        if self.job_dir is None:
            return
        try:
            page.write(self.job_dir)
        except OSError as error:
            self._write_failed(error)
            return
        self._writer = threading.Thread(target=self._write_loop, name="hpcray-status",
                                        daemon=True)
        self._writer.start()

    def _write_loop(self):
        interval = self.config.status_interval
        while not self._stop.wait(interval):
            self.write()

    def write(self, final=False):
        """Write one snapshot (lock not held); at the end also the page and the report."""
        if self.job_dir is None or self.write_failed:
            return
        with self.lock:
            snapshot = self.snapshot(sample=True)
        try:
            layout.write_snapshot(self.job_dir, snapshot)
            if final:
                page.write(self.job_dir, snapshot)
                layout.write_atomically(os.path.join(self.job_dir, layout.REPORT),
                                        views.status_text(snapshot))
        except OSError as error:
            self._write_failed(error)

    def _write_failed(self, error):
        self.write_failed = True
        sys.stderr.write(f"hpcray: warning: cannot write the job directory {self.job_dir} "
                         f"({error}); the job runs on without it\n")
        sys.stderr.flush()

    def close(self, exit_status):
        """The job ends with ``exit_status``: the final snapshot, page and report (the
        tasks still unfinished are abandoned: they count as failed, as in Ray)."""
        if self.state != "RUNNING":
            return
        with self.lock:
            self.table.abandon_unfinished()
            self.state = "FINISHED" if exit_status == 0 else "FAILED"
            self.exit_status = exit_status
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
        self.write(final=True)


def attach(rt, job_info):
    """Give the head its observer: EVENTS and OBSERVE, the head's own events, rank deaths,
    and the job directory's writer."""
    observer = Observer(rt.lock, rt.job, rt.config, rt.transport.send, rt.directory, job_info,
                        rt.events)
    rt.attach("observer", observer)
    rt.events_sink = observer.on_events
    rt.liveness.dead_listeners.append(lambda rank, tasks: observer.on_rank_dead(
        rank, "no longer alive"))
    return observer
