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
import bisect
import itertools
import operator
import os
import sys
import threading
import time
from collections import deque

from ..core import events as ev
from ..jobdir import layout, page, views
from .directory import answer

DURATION_BOUNDS = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
SERIES_POINTS = 600            # samples kept per series (one per snapshot)
NOTES_KEPT = 200
FAILED_KEPT = 50
SLOWEST_KEPT = 10
SNAPSHOT_TASKS = 1000          # task records a written snapshot holds
SNAPSHOT_SPANS = 3000          # timeline spans a written snapshot holds
DROPPED_REMEMBERED = 100000    # ids of ended tasks no longer kept that late events may name
PENDING, RUNNING, FINISHED, FAILED = "PENDING", "RUNNING", "FINISHED", "FAILED"
_START = operator.itemgetter(3)
_NAMED = (ev.SUBMITTED, ev.BEGAN, ev.ENDED, ev.FINISHED, ev.RETRIED)
_CATEGORY = {ev.NORMAL_TASK: "task", ev.ACTOR_TASK: "actor_task",
             ev.ACTOR_CREATION_TASK: "actor_creation"}


class TaskRow:
    """What the head knows of one task (or actor call)."""
    __slots__ = ("task_id", "name", "type", "actor_id", "state", "attempt", "rank", "pid",
                 "submitted", "start", "end", "error_type", "error_message", "ended")

    def __init__(self, task_id, name, kind, actor_id):
        self.task_id = task_id
        self.name = name
        self.type = kind
        self.actor_id = actor_id
        self.state = None
        self.attempt = 0
        self.rank = self.pid = self.submitted = self.start = self.end = None
        self.error_type = self.error_message = None
        self.ended = False                     # counted as ended (FINISHED or FAILED)

    def record(self, node_id):
        """Ray's ``list_tasks`` record."""
        duration = (self.end - self.start) if self.start and self.end else None
        return {"task_id": f"{self.task_id:016x}", "attempt_number": self.attempt,
                "name": self.name, "state": views.RAY_TASK_STATE.get(self.state, self.state),
                "type": self.type, "func_or_class_name": self.name.rpartition(".")[0]
                if self.type == ev.ACTOR_CREATION_TASK else self.name,
                "actor_id": None if self.actor_id is None else f"{self.actor_id:016x}",
                "node_id": None if self.rank is None else node_id(self.rank),
                "worker_pid": self.pid, "rank": self.rank,
                "creation_time_ms": _ms(self.submitted), "start_time_ms": _ms(self.start),
                "end_time_ms": _ms(self.end), "duration_s": duration,
                "error_type": self.error_type, "error_message": self.error_message}


def _ms(seconds):
    return None if seconds is None else int(seconds * 1000)


class FunctionStats:
    __slots__ = ("counts", "total", "longest", "timed")

    def __init__(self):
        self.counts = dict.fromkeys(views.TASK_STATES, 0)
        self.total = self.longest = 0.0
        self.timed = 0


class JobTable:
    """Every rank's events added up. ``node_id(rank)``: the id of a rank's node;
    ``spans_per_rank``: the ring of each rank's timeline."""

    def __init__(self, size, node_id, spans_per_rank=20000, tasks_kept=20000):
        self.node_id = node_id
        self.spans_per_rank = spans_per_rank
        self.tasks_kept = tasks_kept
        self.start = time.time()
        self.forget(size)

    def forget(self, size=None):
        """A new session: nothing of the old one's work is kept but the timeline's past."""
        size = size or len(self.loads)
        self.rows = {}                         # task_id -> TaskRow (unfinished + recent)
        self.ended = deque()                   # ids of ended rows still kept, oldest first
        self.dropped = set()                   # ids of ended rows no longer kept
        self.dropped_order = deque()
        self.functions = {}                    # (name, type) -> FunctionStats
        self.histogram = [0] * (len(DURATION_BOUNDS) + 1)
        self.failed = deque(maxlen=FAILED_KEPT)
        self.slowest = []                      # (seconds, record), longest first
        self.calls = {}                        # actor_id -> calls served
        self.actor_pids = {}                   # actor_id -> (rank, pid) where it was built
        self.restarts = {}                     # actor_id -> times it was built again
        self.spans = getattr(self, "spans", None) or [deque(maxlen=self.spans_per_rank)
                                                      for _ in range(size)]
        self.notes = deque(maxlen=NOTES_KEPT)
        self.short_names = {}                  # a task's name -> Ray's name of it
        self.loads = getattr(self, "loads", None) or [{} for _ in range(size)]

    # ------------------------------------------------------------------ merging
    def merge(self, rank, batch):
        """Add one rank's EVENTS."""
        short_names = self.short_names
        for event in batch:
            kind = event[0]
            if kind in _NAMED and event[3] is None:
                # Ray names a task by its function's name ("f", not "module.f")
                name = event[2]
                short = short_names.get(name)
                if short is None:
                    short = short_names[name] = name.rpartition(".")[2]
                if short is not name:
                    event = event[:2] + (short,) + event[3:]
            if kind == ev.ENDED:
                self._ended(rank, event)
            elif kind == ev.BEGAN:
                self._began(rank, event)
            elif kind == ev.SUBMITTED:
                _, task_id, name, actor_id, when = event
                row = self._row(task_id, name, actor_id, PENDING)
                if row is not None and row.submitted is None:
                    row.submitted = when
            elif kind == ev.FINISHED:
                _, task_id, name, actor_id, when, failure, submitted = event
                row = self._row(task_id, name, actor_id, PENDING)
                if row is not None:
                    row.end = row.end or when
                    row.submitted = row.submitted or submitted
                    self._settle(row, failure)
            elif kind == ev.RETRIED:
                self._retried(event)
            elif kind == ev.TRANSFER:
                _, object_id, nbytes, from_node, to_node, start, end = event
                self.spans[rank].append(("transfer", f"object {object_id:x} "
                                         f"({views.human_bytes(nbytes)}, node {from_node} -> "
                                         f"{to_node})", self.loads[rank].get("pid"), start,
                                         end, True, rank))
            elif kind == ev.WAITED:
                _, pid, count, start, end = event
                self.spans[rank].append(("get", f"get ({count} object{'s' * (count != 1)})",
                                         pid, start, end, True, rank))
            elif kind == ev.NOTE:
                _, when, level, message = event
                self.notes.append({"time": when, "level": level, "rank": rank,
                                   "message": message})
            elif kind == ev.LOAD:
                self.loads[rank] = dict(event[2], sampled=event[1])

    def _row(self, task_id, name, actor_id, state):
        """The row of a task, made (counted in ``state``) if new; None for a task no longer
        kept."""
        row = self.rows.get(task_id)
        if row is None:
            if task_id in self.dropped:
                return None                    # (a late event of a task no longer kept)
            kind = ev.NORMAL_TASK if actor_id is None else ev.task_type(task_id, actor_id)
            row = self.rows[task_id] = TaskRow(task_id, name, kind, actor_id)
            stats = self.functions.get((name, kind))
            if stats is None:
                stats = self.functions[(name, kind)] = FunctionStats()
            stats.counts[state] += 1
            row.state = state
        return row

    def _move(self, row, state):
        """Count the row in ``state`` now (never back, but for a retry)."""
        counts = self.functions[(row.name, row.type)].counts
        counts[row.state] -= 1
        counts[state] += 1
        row.state = state

    def _began(self, rank, event):
        _, task_id, name, actor_id, pid, when = event
        row = self._row(task_id, name, actor_id, RUNNING)
        if row is None:
            return
        row.rank, row.pid, row.start = rank, pid, when
        if row.state == PENDING:
            self._move(row, RUNNING)
        if task_id == actor_id:
            self._built(actor_id, rank, pid)

    def _ended(self, rank, event):
        _, task_id, name, actor_id, pid, start, end, failure = event
        kind = ev.NORMAL_TASK if actor_id is None else ev.task_type(task_id, actor_id)
        self.spans[rank].append((_CATEGORY[kind], name, pid, start, end, failure is None, rank))
        seconds = end - start
        crashed = failure is not None and failure[0] == "WORKER_DIED"
        # a new row starts in its final state (no other report of it came yet)
        row = self._row(task_id, name, actor_id,
                        RUNNING if crashed else FINISHED if failure is None else FAILED)
        stats = self.functions[(name, kind)]
        stats.timed += 1
        stats.total += seconds
        if seconds > stats.longest:
            stats.longest = seconds
        self.histogram[bisect.bisect_left(DURATION_BOUNDS, seconds)] += 1
        if kind == ev.ACTOR_TASK:
            self.calls[actor_id] = self.calls.get(actor_id, 0) + 1
        elif kind == ev.ACTOR_CREATION_TASK:
            self._built(actor_id, rank, pid)
        if row is None:
            return
        row.rank, row.pid, row.start, row.end = rank, pid, start, end
        slowest = self.slowest
        if len(slowest) < SLOWEST_KEPT or seconds > slowest[-1][0]:
            slowest.append((seconds, row))
            slowest.sort(key=lambda item: -item[0])
            del slowest[SLOWEST_KEPT:]
        if not crashed:                        # (a crash: its owner retries it, or fails it)
            self._settle(row, failure)

    def _built(self, actor_id, rank, pid):
        """An actor is built in process ``pid`` of ``rank``: once more somewhere else is a
        restart (its process or its rank died)."""
        where = self.actor_pids.get(actor_id)
        if where is not None and where != (rank, pid):
            self.restarts[actor_id] = self.restarts.get(actor_id, 0) + 1
        self.actor_pids[actor_id] = (rank, pid)

    def _settle(self, row, failure):
        """The task ended (``failure``: ``(error type, message)`` or None): count it so,
        unless it was counted ended already (a row made in its final state is counted, but
        not yet remembered as ended)."""
        if row.ended:
            return
        row.ended = True
        if failure is not None:
            row.error_type, row.error_message = failure
            if row.state != FAILED:
                self._move(row, FAILED)
            self.failed.append(row.record(self.node_id))
        elif row.state != FINISHED:
            self._move(row, FINISHED)
        ended = self.ended
        ended.append(row.task_id)
        if len(ended) > self.tasks_kept:
            old = self.rows.pop(ended.popleft(), None)
            if old is not None:
                self.dropped.add(old.task_id)
                self.dropped_order.append(old.task_id)
                if len(self.dropped_order) > max(4 * self.tasks_kept, DROPPED_REMEMBERED):
                    self.dropped.discard(self.dropped_order.popleft())

    def abandon_unfinished(self):
        """The job ended: its unfinished tasks will never finish."""
        for row in list(self.rows.values()):
            if not row.ended:
                self._settle(row, ("JOB_ENDED", "the job ended before this task finished: "
                                                "it was abandoned"))

    def _retried(self, event):
        _, task_id, name, actor_id, when, why = event
        row = self._row(task_id, name, actor_id, PENDING)
        if row is None:
            return
        self.functions[(row.name, row.type)].counts["RETRIED"] += 1
        row.attempt += 1
        if row.state == RUNNING:
            self._move(row, PENDING)
        self.notes.append({"time": when, "level": "WARNING", "rank": row.rank,
                           "message": f"{name} (task {task_id:016x}) retried: {why}"})

    # ------------------------------------------------------------------ reading
    def task_records(self, limit=None):
        """Ray's task records: unfinished ones first, then the newest ended ones (the order
        they ended in; no sort: the head builds a snapshot every second)."""
        rows = self.rows
        chosen = [row for row in rows.values() if not row.ended]
        for task_id in reversed(self.ended):
            if limit is not None and len(chosen) >= limit:
                break
            row = rows.get(task_id)
            if row is not None:
                chosen.append(row)
        if limit is not None:
            chosen = chosen[:limit]
        return [row.record(self.node_id) for row in chosen]

    def by_function(self):
        table = []
        for (name, kind), stats in self.functions.items():
            entry = {"name": name, "type": kind, **stats.counts,
                     "total_seconds": stats.total, "max_seconds": stats.longest,
                     "mean_seconds": stats.total / stats.timed if stats.timed else None}
            table.append(entry)
        table.sort(key=lambda entry: -sum(entry[state] for state in views.TASK_STATES[:4]))
        return table

    def totals(self):
        totals = dict.fromkeys(views.TASK_STATES, 0)
        for stats in self.functions.values():
            for state, count in stats.counts.items():
                totals[state] += count
        return totals

    def tasks_view(self, limit):
        return {"totals": self.totals(), "by_function": self.by_function(),
                "durations": {"bounds": list(DURATION_BOUNDS), "counts": list(self.histogram)},
                "slowest": [row.record(self.node_id) for _, row in self.slowest],
                "failed": list(self.failed), "recent": self.task_records(limit)}

    def spans_view(self, limit=None):
        """The timeline's spans, oldest first: ``{name, cat, rank, pid, t, dur, ok}`` with
        ``t`` in seconds since the job's start."""
        if limit is not None and limit <= 0:
            return []
        # a span is (cat, name, pid, start, end, ok, rank); the newest of each ring, by start
        spans = itertools.chain.from_iterable(
            ring if limit is None else itertools.islice(reversed(ring), limit)
            for ring in self.spans)
        newest = sorted(spans, key=_START)
        if limit is not None:
            newest = newest[-limit:]
        origin = self.start
        return [{"name": name, "cat": cat, "rank": rank, "pid": pid, "t": start - origin,
                 "dur": max(end - start, 0.0), "ok": ok}
                for cat, name, pid, start, end, ok, rank in newest]

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

    # ------------------------------------------------------------------ the snapshot
    def snapshot(self, task_limit=SNAPSHOT_TASKS, span_limit=SNAPSHOT_SPANS):
        """The job as ``docs/job-directory.md`` describes it (lock held)."""
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
        series = self._sample(ranks, node_store, now)
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

    def _sample(self, ranks, node_store, now):
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
        return {"t": list(series["t"]), "busy": list(series["busy"]),
                **{name: {key: list(values) for key, values in series[name].items()}
                   for name in ("cpu", "rss", "store_used")}}

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
            snapshot = self.snapshot()
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
