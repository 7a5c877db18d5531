"""The rank's worker processes: which one runs what, what each holds, what it asks of the
runtime, and what happens when one dies.

``core/execution.py`` hands each task whose arguments are here to :meth:`WorkerPool.start`
when the rank has room for it (:meth:`WorkerPool.has_room`: the rank's CPUs, GPUs and custom
resources, less those of the tasks running and not blocked in ``get``). The task goes to an
idle worker process (a new one is forked when none is idle), with its argument records;
stored ones are pinned for the worker, which reads them in place.

Each turn of the rank's progress loop (:meth:`WorkerPool.poll`) reads what the workers sent:
results (``DONE``: handed to ``execution.finish`` as if the rank had run the task), requests
of the code they run (``CALL``: ``get``, ``put``, ``submit``, actors... see ``OPS``), and their
notes (refs dropped, views gone). Requests that cannot wait on the loop (they may block: a
question to the head, ``wait``, a borrow) run on a thread of a small pool, as the task's
stand-in: the thread carries the task on its stack, so what it submits is the task's, and a
wait there lends the task's CPU to other work, as a blocked task does.

A worker that dies (segfault, ``os._exit``, SIGKILL, the memory monitor) is noticed at once
(its socket closes) and its exit status comes from the zygote. What it held is released (pins,
room it was writing, refs), and its task fails with WorkerCrashedError at its owner, which
runs it again while ``max_retries`` allows (``Submitter.on_crashed``); the actors it held
restart or die (``ActorHost.process_died``).

Actors (``actor_new``, ``actor_call``, ``actor_end``): the host rank's ``ActorHost`` keeps
mailboxes and decides what runs; this pool only says which process holds which actor. Short
tasks may be sent to a busy process ahead of their turn (:meth:`WorkerPool.ahead`), and the
memory monitor (``memory.py``) ends the newest retriable task's process when the node runs
low.

All methods run with the runtime lock held, but the threads' work.
"""
import os
import pickle
import selectors
import signal
import socket
import sys
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor

from ..actors.host import current_call
from ..core import current, metrics, output, refcount
from ..core.object_ref import ObjectRef, rebuild
from ..wire import messages, serialization
from ..wire.ids import OWNER_SHIFT
from ..wire.objects import ERROR, STORED, from_wire
from . import protocol
from .channel import Channel
from .memory import MemoryMonitor

STATUS_WAIT = 1.0          # seconds to wait for a dead worker's exit status from the zygote
TASKS_PER_WORKER = 64     # tasks one worker process runs at once (all but one blocked)
TASKS_AHEAD = 4            # short tasks sent to a busy process before their turn
AHEAD_SECONDS = 0.001      # tasks are short when they last less than this on average
PROCESSES_PER_CPU = 4      # worker processes a rank forks per CPU before tasks share them
ENDING_STALE_NS = 5 * 10**9    # a rank ending a task for the memory holds the others back
                               # this long at most (it may have died meanwhile)


class WorkerProcess:
    """One worker process, as its rank sees it."""
    __slots__ = ("channel", "pid", "tasks", "pins", "allocs", "held", "status", "closed_at",
                 "cancelled", "blocked", "forgotten", "retired", "started", "gets", "actors",
                 "hosts_actors", "dedicated", "out_of_memory", "charged", "created", "runs")

    def __init__(self, channel):
        self.channel = channel
        self.pid = None                        # known once the zygote reports it
        self.tasks = {}                        # task id -> TaskSpec running there (tasks,
                                               # actor calls and constructions)
        self.created = []                      # ids of the actors its code created (not
                                               # detached): they die with it, as in Ray
        self.charged = set()                   # ids of its tasks counted in the rank's use:
                                               # the one it runs, not those sent ahead
        self.actors = {}                       # actor id -> HostedActor living there
        self.hosts_actors = False              # runs actors (and no tasks)
        self.dedicated = False                 # runs one actor that asked for resources
        self.out_of_memory = None              # why the memory monitor ended it
        self.pins = defaultdict(int)           # store slot -> pins taken for it
        self.allocs = set()                    # slots it is writing (not published yet)
        self.held = {}                         # object id -> [ObjectRef, count] held for it
        self.status = None                     # exit status, once the zygote reported it
        self.closed_at = None                  # when its socket closed
        self.cancelled = set()                 # task ids cancelled while they ran
        self.blocked = defaultdict(int)        # task id -> its waits lending its resources
        self.forgotten = set()                 # request ids answered already, or given up
        self.retired = False                   # ended on purpose: nothing to report
        self.started = time.monotonic()
        self.gets = defaultdict(list)          # task id -> its gets not answered yet
        self.runs = 0                          # tasks and calls it ran (the dashboard's)


class WorkerPool:
    """Collaborators: the ``zygote``, ``setup`` (what each worker is told at birth), the
    runtime ``lock``, ``job`` (JobView), ``transport``, ``progress``, this node's ``store``,
    ``node_load`` (its table), ``refs``, ``access``, ``ownership``, ``execution``,
    ``submitter``, ``requests``,
    ``liveness``, ``waiting`` and the actors' ``client``."""

    def __init__(self, zygote, setup, lock, job, transport, progress, store, node_load, refs,
                 access, ownership, execution, submitter, requests, liveness, waiting, client,
                 host):
        self.zygote = zygote
        self.setup = setup
        self.lock = lock
        self.job = job
        self.transport = transport
        self.progress = progress
        self.store = store
        self.node_load = node_load
        self.refs = refs
        self.access = access
        self.ownership = ownership
        self.execution = execution
        self.submitter = submitter
        self.requests = requests
        self.liveness = liveness
        self.waiting = waiting
        self.client = client
        self.host = host
        self.capacity = dict(job.capacities.get(job.rank, {}))
        self.max_processes = max(int(self.capacity.get("CPU", 1)) * PROCESSES_PER_CPU, 8)
        self.used = defaultdict(float)         # resources of running tasks not blocked
        self.workers = []                      # every live worker process
        self.idle = []                         # task workers with nothing to do
        self.spawning = deque()                # workers whose pid the zygote has not said
        self.by_pid = {}
        self.running = {}                      # task id -> WorkerProcess
        self.children = defaultdict(list)      # task id -> ids of what it submitted
        self.calls = {}                        # actor call or construction id -> HostedActor
        self.homes = {}                        # actor id -> WorkerProcess it lives in
        self.actor_workers = []                # processes shared by plain actors
        self.kept = {}                         # actor id -> slots of its __init__ arguments
                                               # pinned for its restarts
        self.actor_started = {}                # actor id -> when it was built here
        self.closing = []                      # sockets closed, exit status awaited
        self.functions = {}                    # func_id -> blob, sent by workers once
        self.selector = selectors.DefaultSelector()
        self.selector.register(zygote.fileno(), selectors.EVENT_READ, zygote)
        self.threads = ThreadPoolExecutor(64, thread_name_prefix="hpcray-worker-requests")
        self.polling = False
        self.stopped = False
        self.crashes = 0                       # worker processes that died (statistics)
        self.handlers = {protocol.DONE: self.on_done, protocol.CALL: self.on_call,
                         protocol.FORGET: self.on_forget, protocol.DROP: self.on_drop,
                         protocol.UNPIN: self.on_unpin, protocol.ESCAPE: self.on_escape,
                         protocol.ACTOR_EXIT: self.on_actor_exit, protocol.ITEM: self.on_item,
                         protocol.METRICS: self.on_metrics, protocol.OUTPUT: self.on_output}
        self.inline_ops = {"get": self.op_get, "put": self.op_put, "alloc": self.op_alloc,
                           "submit": self.op_submit, "actor_call": self.op_actor_call,
                           "cancel": self.op_cancel, "locate": self.op_locate,
                           "kill": self.op_kill, "dead": self.op_dead,
                           "session_key": self.op_session_key, "refs_in": self.op_refs_in,
                           "warn_if_infeasible": self.op_warn_if_infeasible,
                           "item_ready": self.op_item_ready, "free": self.op_free,
                           "stream_ended": self.op_stream_ended}
        self.thread_ops = {"wait": self.op_wait, "next_item": self.op_next_item,
                           "wait_consumed": self.op_wait_consumed,
                           "ask": self.op_ask, "actor_create": self.op_actor_create,
                           "describe": self.op_describe, "borrow": self.op_borrow,
                           "on_rank": self.op_on_rank}
        self.rank_runtime = None               # what on_rank(fn) gets: the rank's runtime
        self.started_at = {}                   # task id -> when it started here
        self.mean_seconds = 1.0                # recent tasks' average duration (EWMA)
        self.monitor = None                    # MemoryMonitor, unless it is off
        self.published = False                 # start times of our tasks are in node_load

    # ------------------------------------------------------------------ processes
    def warm(self, count):
        """Fork ``count`` idle workers ahead of the first tasks."""
        for _ in range(count):
            self.idle.append(self._spawn())

    def _spawn(self):
        ours, theirs = socket.socketpair()
        self.zygote.spawn(theirs, self.setup)
        worker = WorkerProcess(Channel(ours))
        self.workers.append(worker)
        self.spawning.append(worker)
        self.selector.register(ours.fileno(), selectors.EVENT_READ, worker)
        return worker

    def _worker_for_task(self):
        """An idle worker; else a new one, while the rank has fewer than
        ``PROCESSES_PER_CPU`` per CPU (tasks that wait in ``get`` lend their CPU, so deep
        recursion could fork hundreds); else one whose tasks all wait: it runs the new task
        on a thread of its own (a KeyboardInterrupt from ``cancel`` then reaches it only
        between two Python instructions, not in a sleep)."""
        worker = self._take_idle()
        if worker is not None:
            return worker
        if len(self.workers) < self.max_processes:
            return self._spawn()
        for worker in self.workers:
            tasks = worker.tasks
            if (tasks and len(worker.blocked) == len(tasks) < TASKS_PER_WORKER
                    and worker.closed_at is None and not worker.retired
                    and not worker.hosts_actors):
                return worker
        return self._spawn()

    def _take_idle(self):
        while self.idle:
            worker = self.idle.pop()
            if worker.closed_at is None and not worker.channel.closed:
                return worker
        return None

    def _back_to_idle(self, worker):
        limit = max(int(self.capacity.get("CPU", 1)), 1) * 2
        if len(self.idle) >= limit:            # more than the rank needs: let it go
            self._retire(worker)
        else:
            self.idle.append(worker)

    def _retire(self, worker):
        worker.retired = True
        worker.channel.post(protocol.exit_())

    # ------------------------------------------------------------------ tasks
    def has_room(self, spec):
        """Whether the task may start now: its resources fit what running tasks leave."""
        if not self.running:
            return True
        used, capacity = self.used, self.capacity
        for name, amount in spec.resources.items():
            if amount and used[name] + amount > capacity.get(name, 0.0) + 1e-9:
                return False
        return True

    def start(self, spec, deps):
        """Run a task (its arguments ``deps`` are here) in a worker process (sent on the next
        :meth:`flush`)."""
        worker = self._worker_for_task()
        worker.tasks[spec.task_id] = spec
        self.running[spec.task_id] = worker
        self.started_at[spec.task_id] = time.monotonic()
        self.execution.events.began(spec, worker.pid)
        self._charge(worker, spec)
        worker.channel.post(protocol.run(spec, self._lend_all(worker, deps)), False)

    def flush(self):
        """Send the work :meth:`start` and :meth:`ahead` queued (one write per process)."""
        for worker in self.workers:
            if worker.channel.outbox:
                worker.channel.flush()

    def ahead(self, spec, deps):
        """Send a short task to a busy process, to run after its task (no wait for the
        rank in between): when recent tasks were short, the task asks for at most one
        CPU and may be retried (a crash of the one before it ends it too). Returns whether
        it was sent. Its resources count once the task before it is done (:meth:`_charge`):
        a process runs one task at a time, so the rank's other processes may take other
        tasks meanwhile (a long task holds up only the few sent behind it)."""
        if self.mean_seconds > AHEAD_SECONDS or spec.max_retries == 0:
            return False
        resources = spec.resources
        if len(resources) > 1 or resources.get("CPU", 0.0) > 1.0 or (
                resources and "CPU" not in resources):
            return False
        best = None
        for worker in self.workers:
            tasks = worker.tasks
            if (tasks and len(tasks) <= TASKS_AHEAD and not worker.blocked
                    and not worker.hosts_actors and not worker.retired
                    and worker.closed_at is None
                    and (best is None or len(tasks) < len(best.tasks))):
                best = worker
        if best is None:
            return False
        best.tasks[spec.task_id] = spec
        self.running[spec.task_id] = best
        self.started_at[spec.task_id] = time.monotonic()
        self.execution.events.began(spec, best.pid)
        best.channel.post(protocol.run(spec, self._lend_all(best, deps), True), False)
        return True

    def _lend_all(self, worker, deps):
        if not deps:
            return None
        lend = self._lend
        return {object_id: lend(worker, obj) for object_id, obj in deps.items()}

    def _lend(self, worker, obj):
        """A record for a worker: a stored object is pinned once per view for it."""
        if obj.kind != STORED:
            return tuple(obj), None
        count = len(obj.parts)
        start = self.store.pin(obj.slot, count)
        worker.pins[obj.slot] += count
        return tuple(obj), start

    def runs(self, spec):
        """Whether the task (or actor call) runs in one of this rank's worker processes."""
        return spec.task_id in self.running or spec.task_id in self.calls

    def _charge(self, worker, spec):
        """The task's resources count in the rank's use from now on (it runs)."""
        worker.charged.add(spec.task_id)
        if not worker.blocked.get(spec.task_id):
            for name, amount in spec.resources.items():
                self.used[name] += amount

    def set_blocked(self, spec, blocked):
        """The task waits (lends its resources) or runs again."""
        task_id = spec.task_id
        worker = self.running.get(task_id)
        if worker is not None and task_id not in worker.charged:
            # sent ahead and run on another thread meanwhile: it counts only once charged
            waits = worker.blocked[task_id] + (1 if blocked else -1)
            if waits > 0:
                worker.blocked[task_id] = waits
            else:
                worker.blocked.pop(task_id, None)
            return
        if worker is None:
            actor = self.calls.get(task_id)
            worker = actor and self.homes.get(actor.spec.actor_id)
            if worker is None:
                return
        waits = worker.blocked[task_id] + (1 if blocked else -1)
        if waits > 0:
            worker.blocked[task_id] = waits
        else:
            worker.blocked.pop(task_id, None)
        if waits == (1 if blocked else 0):     # the first wait lends, the last one ends
            sign = -1 if blocked else 1
            for name, amount in spec.resources.items():
                self.used[name] += sign * amount

    def on_metrics(self, worker, taken):
        """METRICS: what the worker recorded: sent on to the head with this rank's."""
        metrics.recorder.put_back(taken)

    def on_output(self, worker, records):
        """OUTPUT: what the worker printed: passed on to the head with this rank's."""
        output.buffer.put_back(records)

    def on_item(self, worker, task_id, index, raw, contained, written):
        """ITEM: a generator task yielded an item: to its owner."""
        self._published(worker, written)
        spec = worker.tasks.get(task_id)
        if spec is not None:
            self.execution.send_item(spec, index, from_wire(raw), contained)

    def on_done(self, worker, task_id, results, seconds, contained, written):
        spec = worker.tasks.get(task_id)
        if spec is None:
            return
        worker.runs += 1
        if spec.actor_id is not None:
            self._actor_done(worker, spec, results, contained, written)
            return
        self._end_task(worker, spec)
        self._published(worker, written)
        if seconds is not None:
            self.mean_seconds += 0.1 * (seconds - self.mean_seconds)
        if task_id in worker.cancelled:
            worker.cancelled.discard(task_id)
            results = self._cancelled(spec)
        else:
            results = [(object_id, from_wire(raw)) for object_id, raw in results]
        self.execution.finish(spec, results, seconds, contained)
        if not worker.tasks and not worker.retired:
            self._back_to_idle(worker)

    # ------------------------------------------------------------------ actors
    def actor_new(self, actor, deps):
        """Build an actor (its arguments ``deps`` are here) in a worker process: one of its
        own if it asks for resources or may restart (as in Ray: another actor's crash
        neither ends it nor uses up its restarts); else one shared by this rank's plain
        actors (one per CPU), so that thousands of actors cost no more processes."""
        spec = actor.spec
        worker = self._worker_for_actor(spec)
        worker.actors[spec.actor_id] = actor
        self.homes[spec.actor_id] = worker
        self.actor_started[spec.actor_id] = time.monotonic()
        if spec.max_restarts and spec.actor_id not in self.kept:
            self.kept[spec.actor_id] = self._keep(deps)
        task = spec.construction()
        worker.tasks[task.task_id] = task
        self.calls[task.task_id] = actor
        self.execution.events.began(task, worker.pid)
        worker.channel.post(protocol.actor_new(spec, self._lend_all(worker, deps)))

    def _worker_for_actor(self, spec):
        if spec.max_restarts or any(spec.resources.values()) or spec.runtime_env:
            worker = self._take_idle() or self._spawn()
            worker.hosts_actors = worker.dedicated = True
            return worker
        shared = [worker for worker in self.actor_workers
                  if worker.closed_at is None and not worker.retired]
        self.actor_workers = shared
        if len(shared) < max(int(self.capacity.get("CPU", 1)), 1):
            worker = self._take_idle() or self._spawn()
            worker.hosts_actors = True
            shared.append(worker)
            return worker
        return min(shared, key=lambda worker: len(worker.actors))

    def _keep(self, deps):
        """Pin the stored arguments of a restartable actor's __init__ for its restarts."""
        slots = []
        for obj in deps.values():
            if obj.kind == STORED:
                self.store.pin(obj.slot)
                slots.append(obj.slot)
        return slots

    def actor_call(self, actor, call, deps):
        """Run a call of ``actor`` (its mailbox says it may run now) in its process."""
        worker = self.homes[actor.spec.actor_id]
        worker.tasks[call.task_id] = call
        self.calls[call.task_id] = actor
        # (a plain actor's calls queue in its process, which runs them in turn)
        self.execution.events.began(call, worker.pid, one_at_a_time=actor.limit == 1)
        worker.channel.post(protocol.actor_call(call, self._lend_all(worker, deps)))

    def actor_end(self, actor):
        """The actor is over: its process drops it (a process of its own ends)."""
        actor_id = actor.spec.actor_id
        for slot in self.kept.pop(actor_id, ()):
            self.store.unpin(slot)
        worker = self.homes.pop(actor_id, None)
        self.actor_started.pop(actor_id, None)
        self.execution.events.actor_over(actor_id)
        if worker is None:
            return
        worker.actors.pop(actor_id, None)
        if worker.dedicated:
            self._kill(worker)
        else:
            worker.channel.post(protocol.actor_end(actor_id))

    def actor_crash(self, actor):
        """End the process of an actor that may restart (its own, as such actors have), as a
        crash would (``kill(no_restart=False)``)."""
        worker = self.homes.get(actor.spec.actor_id)
        if worker is not None and worker.dedicated and worker.pid is not None:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def actor_cancel(self, actor, task_id):
        """Cancel a call of ``actor`` sent to its process ahead of its turn."""
        worker = self.homes.get(actor.spec.actor_id)
        if worker is not None:
            worker.channel.post(protocol.cancel_call(task_id))

    def _kill(self, worker):
        worker.retired = True
        if worker.pid is not None:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            worker.channel.post(protocol.exit_())

    def _actor_done(self, worker, spec, results, contained, written):
        self._forget_call(worker, spec)
        actor = self.calls.pop(spec.task_id)
        self._published(worker, written)
        results = [(object_id, from_wire(raw)) for object_id, raw in results]
        if spec.task_id == spec.actor_id:      # its construction
            outcome = results[0][1]
            self.host.built(actor, outcome if outcome.kind == ERROR else None)
        else:
            self.host.call_done(actor, spec, results, contained)

    def _forget_call(self, worker, spec):
        task_id = spec.task_id
        del worker.tasks[task_id]
        worker.gets.pop(task_id, None)
        for _ in range(worker.blocked.pop(task_id, 0)):
            self.execution.reclaim(spec, False)

    def on_actor_exit(self, worker, task_id, reason):
        """ACTOR_EXIT: the call ended its actor (the process dropped it)."""
        spec = worker.tasks.get(task_id)
        if spec is None:
            return
        self._forget_call(worker, spec)
        actor = self.calls.pop(task_id)
        worker.actors.pop(actor.spec.actor_id, None)
        self.host.call_exited(actor, spec, reason)

    def _end_task(self, worker, spec):
        task_id = spec.task_id
        del worker.tasks[task_id]
        self.running.pop(task_id, None)
        self.started_at.pop(task_id, None)
        self.children.pop(task_id, None)
        worker.gets.pop(task_id, None)
        blocked = worker.blocked.pop(task_id, 0)
        if task_id in worker.charged:
            worker.charged.discard(task_id)
            if blocked:                        # (its resources were lent: nothing to give)
                for _ in range(blocked):
                    self.execution.reclaim(spec, False)
            else:
                for name, amount in spec.resources.items():
                    self.used[name] -= amount
            for task in worker.tasks.values():     # the next one sent ahead runs now
                if task.actor_id is None and task.task_id not in worker.charged:
                    self._charge(worker, task)
                    break
        elif blocked:
            for _ in range(blocked):
                self.execution.reclaim(spec, False)

    def _cancelled(self, spec):
        error = serialization.cancelled(spec.task_id)
        return [(object_id, error) for object_id in spec.return_ids()]

    def cancel(self, task_id, force, recursive):
        """Cancel a task running in a worker: KeyboardInterrupt in its thread (the gets it
        waits in fail with it), or (``force``) end its process; ``recursive``: cancel what
        it submitted too. Returns whether it runs here."""
        worker = self.running.get(task_id)
        if worker is None:
            return False
        if recursive:
            for child in self.children.get(task_id, ()):
                self.submitter.cancel(child, force, recursive)
        worker.cancelled.add(task_id)
        order = list(worker.tasks)
        if any(earlier not in worker.blocked for earlier in order[:order.index(task_id)]):
            # Sent ahead, behind a task still running: it has not started. The process drops
            # it when it reads this (before it would start it).
            worker.channel.post(protocol.interrupt(task_id))
            return True
        if force and worker.pid is not None:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return True
        interrupt = KeyboardInterrupt()
        for req_id in worker.gets.pop(task_id, ()):
            self.reply(worker, req_id, False, interrupt)
            worker.forgotten.add(req_id)       # (its objects, if they come, are not sent)
        worker.channel.post(protocol.interrupt(task_id))
        if worker.pid is not None:
            try:
                os.kill(worker.pid, signal.SIGINT)     # out of a sleep, if it is in one
            except ProcessLookupError:
                pass
        return True

    def wait(self, timeout):
        """Sleep until a worker sends something, or ``timeout`` (lock not held)."""
        self.selector.select(timeout)

    # ------------------------------------------------------------------ the loop's turn
    def poll(self):
        """Read what the workers and the zygote sent, handle it, send what is queued."""
        if self.polling or self.stopped:
            return 0                           # (a request handled here turned the loop)
        self.polling = True
        handled = 0
        try:
            for key, _ in self.selector.select(0):
                source = key.data
                if source is self.zygote:
                    self._zygote_reports()
                    continue
                try:
                    received = source.channel.receive_ready()
                except EOFError:
                    self._closed(source)
                    continue
                handled += len(received)
                handlers = self.handlers
                for message in received:
                    handlers[message[0]](source, *message[1:])
            for worker in self.workers:
                if worker.channel.outbox:
                    worker.channel.flush()
            if self.closing:
                self._overdue()
            if self.monitor is not None:
                if self.running or self.homes:
                    self._watch_memory()
                elif self.published:           # nothing runs here: say so to the node
                    self.node_load.publish_newest(0, 0)
                    self.published = False
        finally:
            self.polling = False
        return handled

    def _watch_memory(self):
        """Above the memory threshold: end the worker process of the node's newest
        retriable task or actor (one that may restart), else of its newest one, if this
        rank runs it; one at a time on the node, the next look after that one is gone. The
        ranks of the node agree through its load table: each publishes when its newest
        ones started, and whether it is ending one."""
        if any(worker.out_of_memory for worker in self.workers):
            return                             # the last one is still dying
        monitor = self.monitor
        if not monitor.due():
            return
        # (started, may be retried, what, its process) of what runs here, oldest first
        candidates = sorted(
            [(self.started_at.get(task_id, 0.0), worker.tasks[task_id].max_retries != 0,
              f"task {worker.tasks[task_id].name}", worker)
             for task_id, worker in self.running.items()]
            + [(self.actor_started.get(actor_id, 0.0), worker.actors[actor_id].spec.max_restarts
                != 0, f"actor {worker.actors[actor_id].spec.class_name}", worker)
               for actor_id, worker in self.homes.items() if actor_id in worker.actors],
            key=lambda candidate: candidate[0])
        retriable = [candidate for candidate in candidates if candidate[1]]
        node_load = self.node_load
        node_load.publish_newest(*(int(group[-1][0] * 1e9) if group else 0
                                   for group in (retriable, candidates)))
        self.published = True
        seen = monitor.over()
        if seen is None:
            return
        now = time.monotonic_ns()
        if node_load.ending_elsewhere(now, ENDING_STALE_NS) or not node_load.holds_newest():
            return                             # another rank of the node ends one
        _, _, what, worker = (retriable or candidates)[-1]
        if worker.pid is None:
            return
        worker.out_of_memory = (f"the memory monitor ended its worker process (pid "
                                f"{worker.pid}) on {self.job.where()}: {seen}")
        node_load.set_ending(now)
        sys.stderr.write(f"hpcray: {what}: {worker.out_of_memory}\n")
        sys.stderr.flush()
        self.execution.events.note("WARNING", f"{what}: {worker.out_of_memory}")
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _zygote_reports(self):
        try:
            reports = self.zygote.events()
        except EOFError:
            self.selector.unregister(self.zygote.fileno())
            if not self.progress.stopping:
                self.progress.fail("the zygote that forks this rank's worker processes died")
            return
        for report in reports:
            if report[0] == "forked":
                worker = self.spawning.popleft()
                worker.pid = report[1]
                self.by_pid[worker.pid] = worker
            else:
                _, pid, status = report
                worker = self.by_pid.pop(pid, None)
                if worker is not None:
                    worker.status = status
                    if worker.closed_at is not None:
                        self._dead(worker)

    def _closed(self, worker):
        """A worker's socket closed: it is dying. Its end is handled once the zygote says
        how it ended (or after STATUS_WAIT)."""
        try:
            self.selector.unregister(worker.channel.fd)
        except (KeyError, ValueError):
            pass
        worker.channel.close()
        worker.closed_at = time.monotonic()
        if worker.status is not None:
            self._dead(worker)
        else:
            self.closing.append(worker)

    def _overdue(self):
        now = time.monotonic()
        for worker in list(self.closing):
            if now - worker.closed_at > STATUS_WAIT:
                self._dead(worker)

    def _dead(self, worker):
        """A worker process is gone: release what it held; its task fails (or retries)."""
        if worker in self.closing:
            self.closing.remove(worker)
        if worker not in self.workers:
            return
        self.workers.remove(worker)
        if worker.out_of_memory is not None:
            self.node_load.set_ending(0)       # the node's monitors may end another one
        if worker in self.idle:
            self.idle.remove(worker)
        self.by_pid.pop(worker.pid, None)
        store = self.store
        for slot, count in worker.pins.items():
            for _ in range(count):
                store.unpin(slot)
        worker.pins.clear()
        for slot in worker.allocs:
            store.unpin(slot)
            store.free(slot)
        worker.allocs.clear()
        worker.held.clear()
        if self.progress.stopping:
            return
        how = describe_status(worker.status)
        events = self.execution.events
        if not worker.retired:
            running = ", ".join(spec.name for spec in worker.tasks.values())
            events.note("ERROR", f"worker process {worker.pid} of rank {self.job.rank} died "
                                 f"({how})" + (f" running {running}" if running else ""))
            for spec in worker.tasks.values():
                events.crashed(spec, f"its worker process died ({how})")
        if worker.created and not worker.retired:  # its actors die with it (Ray's fate
            for actor_id in worker.created:        # sharing), detached ones excepted
                self.client.kill(actor_id, f"its owner, a worker process of rank "
                                           f"{self.job.rank}, died ({how})")
        if worker.hosts_actors:
            self._actors_lost(worker, how)
        if not worker.tasks:
            return
        if not worker.retired:
            self.crashes += 1
        for spec in list(worker.tasks.values()):
            self._end_task(worker, spec)
            if spec.task_id in worker.cancelled:
                self.execution.finish(spec, self._cancelled(spec), None, None)
                continue
            if worker.retired:
                continue
            oom = worker.out_of_memory is not None
            reason = worker.out_of_memory or (f"the worker process (pid {worker.pid}) "
                                              f"running it on {self.job.where()} died: {how}")
            self.execution.release(spec)
            if spec.owner == self.job.rank:
                self.submitter.on_crashed(spec.task_id, reason, worker.status, oom)
            else:
                self.transport.send(spec.owner, messages.crashed(spec.task_id, reason,
                                                                 worker.status, oom))

    def _actors_lost(self, worker, how):
        """The actors of a dead process restart (or die): their host decides."""
        if worker in self.actor_workers:
            self.actor_workers.remove(worker)
        for spec in list(worker.tasks.values()):
            self._forget_call(worker, spec)
            self.calls.pop(spec.task_id, None)
        actors = list(worker.actors.values())
        worker.actors.clear()
        for actor in actors:
            self.homes.pop(actor.spec.actor_id, None)
            self.actor_started.pop(actor.spec.actor_id, None)
        if worker.retired:                     # ended on purpose (kill, exit)
            return
        self.crashes += 1
        reason = worker.out_of_memory or (f"the worker process (pid {worker.pid}) on "
                                          f"{self.job.where()}: {how}")
        for actor in actors:
            self.host.process_died(actor, reason, worker.status)

    # ------------------------------------------------------------------ requests
    def on_call(self, worker, req_id, op, blob, task_id):
        spec = self._context(worker, task_id)
        args = pickle.loads(blob)
        handler = self.inline_ops.get(op)
        if handler is not None:
            value, ok = _as_task(spec, handler, worker, req_id, spec, *args)
            if value is not _LATER:
                self.reply(worker, req_id, ok, value)
            return
        handler = self.thread_ops[op]
        self.threads.submit(self._on_thread, handler, worker, req_id, spec, args)

    def _on_thread(self, handler, worker, req_id, spec, args):
        value, ok = _as_task(spec, handler, worker, spec, *args)
        with self.lock:
            if self.stopped or self.progress.stopping:
                return                         # (MPI may be finalized)
            self.reply(worker, req_id, ok, value)
            self.transport.flush()

    def _context(self, worker, task_id):
        return worker.tasks.get(task_id)

    def reply(self, worker, req_id, ok, value, pins=None):
        """Answer a request; the refs in the answer are held for the worker from now on."""
        if worker.closed_at is not None or req_id in worker.forgotten:
            worker.forgotten.discard(req_id)
            return False
        with refcount.capture("contained") as ids:
            try:
                payload = serialization.dumps(value)
            except Exception as error:
                ok, ids[:] = False, []
                payload = serialization.dumps(RuntimeError(
                    f"hpcray could not send the answer to the worker process: "
                    f"{type(error).__name__}: {error}"))
        if ids:
            self._hold(worker, ids)
        worker.channel.post(protocol.reply(req_id, ok, payload, pins))
        return True

    def _hold(self, worker, ids, make_ref=ObjectRef):
        """Hold refs for the worker (``make_ref``: a fresh local ref, or one received)."""
        held = worker.held
        for object_id in ids:
            entry = held.get(object_id)
            if entry is None:
                held[object_id] = [make_ref(object_id), 1]
            else:
                entry[1] += 1

    def on_forget(self, worker, req_id):
        worker.forgotten.add(req_id)

    def on_drop(self, worker, pairs):
        held = worker.held
        for object_id, count in pairs:
            entry = held.get(object_id)
            if entry is not None:
                entry[1] -= count
                if entry[1] <= 0:
                    del held[object_id]

    def on_unpin(self, worker, slots):
        pins, store = worker.pins, self.store
        for slot in slots:
            if pins.get(slot, 0) > 0:
                pins[slot] -= 1
                if not pins[slot]:
                    del pins[slot]
                store.unpin(slot)

    def on_escape(self, worker, object_id):
        self.refs.note_escape(object_id)

    def _published(self, worker, slots):
        """The worker finished writing these slots (their objects are in its message)."""
        for slot in slots or ():
            if slot in worker.allocs:
                worker.allocs.discard(slot)
                self.store.unpin(slot)

    # ------------------------------------------------------------------ the requests (lock held)
    def op_get(self, worker, req_id, spec, ids):
        wanted = list(dict.fromkeys(ids))
        found = {}
        state = {"lent": False}
        started = time.time()

        def arrived(object_id, obj):
            if object_id in found:
                return
            found[object_id] = obj
            if len(found) < len(wanted):
                return
            self.execution.events.waited(len(ids), started, worker.pid)   # (the timeline's)
            if state["lent"]:
                state["lent"] = False
                if spec.task_id in worker.tasks:       # (else its end reclaimed it)
                    self.execution.reclaim(spec, False)
                    gets = worker.gets.get(spec.task_id)
                    if gets and req_id in gets:
                        gets.remove(req_id)
            if worker.closed_at is not None or req_id in worker.forgotten:
                worker.forgotten.discard(req_id)
                return
            lend = self._lend
            answers = [lend(worker, found[object_id]) for object_id in ids]
            pins = [(raw[3], len(raw[6])) for raw, start in answers if start is not None]
            self.reply(worker, req_id, True, answers, pins)
            self.transport.flush()

        for object_id in wanted:
            self.access.lookup(object_id, lambda obj, oid=object_id: arrived(oid, obj))
        if len(found) < len(wanted) and spec is not None:
            state["lent"] = True
            self.execution.lend(spec)
            worker.gets[spec.task_id].append(req_id)
        self.transport.flush()
        return _LATER

    def op_refs_in(self, worker, req_id, spec, ids):
        """Refs the worker found in values it unpickled: held for it from now on (before any
        DROP of theirs is handled), and this rank registers as their borrower; the answer
        waits for the owners' ACKs, as a task of the rank waits before it runs."""
        self._hold(worker, ids, rebuild)
        rank = self.job.rank
        foreign = [object_id for object_id in ids if object_id >> OWNER_SHIFT != rank]
        pending = self.refs.register(foreign) if foreign else None
        if not pending:
            return None
        self.transport.flush()
        self.threads.submit(self._on_thread, self._await_acks, worker, req_id, spec,
                            (pending,))
        return _LATER

    def _await_acks(self, worker, spec, pending):
        refs = self.refs
        self.waiting.wait_until(lambda: not refs.pending_acks(pending))

    def op_put(self, worker, req_id, spec, raw, contained, written):
        obj = from_wire(raw)
        self._published(worker, written)
        object_id = self.ownership.add(obj)
        ref = ObjectRef(object_id)
        if contained:
            self.refs.contain(object_id, contained)
        return ref

    def op_alloc(self, worker, req_id, spec, nbytes):
        slot = self.store.allocate(nbytes)
        worker.allocs.add(slot)
        return slot, self.store.first_page(slot)

    def op_submit(self, worker, req_id, spec, name, func_id, func_blob, args, kwargs,
                  num_returns, resources, max_retries, retry_exceptions, node_hint, strategy,
                  stream, runtime_env):
        if func_blob is None:
            func_blob = self.functions[func_id]
        else:
            self.functions[func_id] = func_blob
        refs = self.submitter.submit_task(name, func_id, func_blob, args, kwargs, num_returns,
                                          resources, max_retries, retry_exceptions, node_hint,
                                          strategy, stream, runtime_env)
        if spec is not None and refs:          # (for cancel(..., recursive=True))
            self.children[spec.task_id].append(refs[0].id)
            if spec.task_id in worker.cancelled:   # submitted while it was being cancelled
                self.submitter.cancel(refs[0].id, False, True)
        return refs

    def op_actor_call(self, worker, req_id, spec, *args):
        return self.client.call(*args)

    def op_cancel(self, worker, req_id, spec, object_id, force, recursive):
        self.submitter.cancel(object_id, force, recursive)

    def op_session_key(self, worker, req_id, spec):
        return self.client.session_key()

    def op_locate(self, worker, req_id, spec, object_id):
        return self.submitter.locate(object_id)

    def op_kill(self, worker, req_id, spec, actor_id, reason, restart):
        self.client.kill(actor_id, reason, restart)

    def op_dead(self, worker, req_id, spec):
        return set(self.liveness.dead)

    def op_warn_if_infeasible(self, worker, req_id, spec, resources, what):
        self.submitter.warn_if_infeasible(resources, what)

    # ------------------------------------------------------------------ (on a thread)
    def op_wait(self, worker, spec, ids, num_returns, timeout, streams):
        return list(self.access.wait(ids, num_returns, timeout, set(streams)))

    def op_wait_consumed(self, worker, spec, task_id, needed):
        self.execution.wait_consumed(worker.tasks.get(task_id) or spec, needed,
                                     in_worker_process=True)

    def op_next_item(self, worker, spec, task_id, timeout):
        return self.access.next_item(task_id, timeout)

    def op_free(self, worker, req_id, spec, object_ids):
        self.submitter.free(object_ids)

    def op_item_ready(self, worker, req_id, spec, task_id):
        return self.ownership.item_ready(task_id)

    def op_stream_ended(self, worker, req_id, spec, task_id):
        return task_id not in self.ownership.streams


    def op_ask(self, worker, spec, constructor, *args):
        return self.requests.ask(getattr(messages, constructor), *args)

    def op_actor_create(self, worker, spec, args, kwargs):
        parts = self.client.create(*args, **kwargs)
        if not kwargs.get("detached"):
            with self.lock:
                worker.created.append(parts[0].id)
        return parts

    def op_describe(self, worker, spec, info):
        return self.client.describe(info)

    def op_borrow(self, worker, spec, object_id):
        return self.access.borrow(object_id)

    def op_on_rank(self, worker, spec, fn):
        return fn(self.rank_runtime)

    # ------------------------------------------------------------------ sessions and the end
    def load(self):
        """This rank's worker processes for the dashboard (a load probe: core/events.py):
        ``(pid, busy, tasks run)`` of each, how many run something, tasks run in all."""
        workers = [(worker.pid or 0, bool(worker.charged or worker.tasks), worker.runs)
                   for worker in self.workers]
        return {"workers": workers, "busy": sum(1 for _, busy, _ in workers if busy),
                "tasks_run": sum(runs for _, _, runs in workers)}

    def forget(self):
        """A new session: the old session's workers go (with its actors and tasks); fresh
        ones start."""
        count = len(self.workers)
        for worker in list(self.workers):
            self._kill(worker)
        self.running.clear()
        self.started_at.clear()
        self.children.clear()
        self.used.clear()
        self.calls.clear()
        self.homes.clear()
        self.actor_workers = []
        for slots in self.kept.values():
            for slot in slots:
                self.store.unpin(slot)
        self.kept.clear()
        self.idle = []
        self.warm(max(min(count, int(self.capacity.get("CPU", 1))), 1))

    def stop(self):
        """The rank leaves: its zygote and every worker end (SIGKILL follows the zygote's
        death to each worker)."""
        if self.stopped:
            return
        self.stopped = True
        self.zygote.stop()
        self.threads.shutdown(wait=False)


_LATER = object()          # an inline request answered later (get)


def _as_task(spec, handler, *args):
    """``handler(*args)`` as the task (or actor call) ``spec`` the request came from: on
    this thread's task stack, and as the current actor call. Returns ``(value, ok)``, the
    exception raised as the value when not ok."""
    stack = current.task_stack()
    if spec is not None:
        stack.append(spec)
    token = current_call.set(spec if spec is not None and spec.actor_id else None)
    try:
        return handler(*args), True
    except BaseException as error:
        return error, False
    finally:
        current_call.reset(token)
        if spec is not None:
            stack.pop()


def describe_status(status):
    """How a process ended, in words, from ``os.waitstatus_to_exitcode``'s number."""
    if status is None:
        return "it ended (its exit status is unknown)"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by signal {-status} ({name})"
    return f"it exited with status {status}"


def attach(rt, zygote, setup):
    """Give an executing rank its worker processes: the pool runs its tasks from now on."""
    pool = WorkerPool(zygote, setup, rt.lock, rt.job, rt.transport, rt.progress, rt.store,
                      rt.node_load, rt.refs, rt.access, rt.ownership, rt.execution, rt.submitter,
                      rt.requests, rt.liveness, rt.waiting, rt.client, rt.host)
    rt.attach("workers", pool)
    pool.rank_runtime = rt
    rt.execution.runner = pool
    rt.events.probes.append(pool.load)
    rt.progress.turn_hooks.append(pool.poll)
    rt.lifecycle.at_close.append(pool.stop)
    config = rt.config
    if config.memory_monitor_refresh_ms:
        pool.monitor = MemoryMonitor(config.memory_usage_threshold,
                                     config.memory_monitor_refresh_ms)
    pool.warm(max(int(pool.capacity.get("CPU", 1)), 1))
    return pool
