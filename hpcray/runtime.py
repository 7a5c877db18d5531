"""The per-rank runtime: ownership of objects, task submission, dependency resolution, ``get``.

Data flow of one task (``docs/architecture.md`` draws it larger)::

    driver / task on rank A (owner)          head (rank 0)               executor rank B
    ---------------------------------        ------------------          -----------------------
    f.remote(x, ref) --> TaskSpec
      |  on rank 0: GlobalScheduler.place --------------------------------> TASK
      |  on a worker: NodeLoad.pick ---- own node has room -------------> TASK
      |                   `-- node busy --> SPILL --> GlobalScheduler.place --> TASK
      |                                                                    |  deps owned elsewhere:
      |                                                   GET_OBJECT <-----'  (owner replies OBJECT
      |                                                                    |   once it is ready)
      |                                                                    v
      |                                                      ready queue -> execute (worker.py)
    objects[id] <------------------------------------------------------ RESULT
    get(ref) returns                             DONE <-- (if the head placed it for another owner)

Every rank owns the objects it creates (``put``) or whose tasks it submits, and keeps them in
``objects`` until the last local ``ObjectRef`` is gone; other ranks ask the owner for them.
Large objects live in the node's store (``store.py``); an owner's entry then only describes
where, and ranks of other nodes copy them into their own node's store (``copies.py``).
All state is guarded by one re-entrant lock that is also the MPI lock: message handlers run
with it held, user code never does. Waits poll MPI under the lock; a task that waits in
``get`` hands its rank's execution slot to a helper thread and sleeps until what it waits
for arrives, so nested tasks cannot deadlock the pool, however deep.
"""
import itertools
import os
import sys
import threading
import time
from collections import OrderedDict, defaultdict, deque
from concurrent.futures import Future

from . import serialization, worker
from .actor_client import ActorClient
from .actor_directory import ActorDirectory
from .actor_host import ActorHost
from .exceptions import (GetTimeoutError, ObjectLostError, RuntimeBrokenError,
                         TaskCancelledError)
from .copies import NodeCopies
from .refs import RefTracker
from .refs import capture as refs_capture
from .protocol import Msg, make_id, owner_of, OWNER_SHIFT
from .serialization import STORED
from .scheduler import GlobalScheduler, NodeLoad, check_feasible
from .transport import Backoff, Transport

_instance = None          # this process's Runtime, once started
FUTURE_POLL = 0.0002      # seconds between polls of the progress thread while futures wait


def get_runtime():
    if _instance is None:
        raise RuntimeBrokenError("hpcray is not running in this process; call hpcray.init()")
    return _instance


def current_rank():
    return _instance.rank if _instance is not None else 0


def note_ref(object_id, delta):
    """Count ObjectRef instances in this process (called from __init__/__del__)."""
    runtime = _instance
    if runtime is not None:
        runtime.ref_events.append((object_id, delta))


def note_escape(object_id):
    """A ref was pickled outside the tracked paths: if owned here, never free it."""
    runtime = _instance
    if runtime is not None and object_id >> OWNER_SHIFT == runtime.rank:
        runtime.ref_events.append((object_id, 0))


class TaskRecord:
    """What an owner remembers about a task it submitted until the results arrive."""
    __slots__ = ("spec", "where", "contained")

    def __init__(self, spec, where, contained=()):
        self.spec = spec
        self.where = where
        self.contained = contained             # refs inside its arguments, held until done


class Runtime:
    def __init__(self, comm, config, node_comm, node_index, capacities, on_exit=None,
                 watch_parent=True, store=None):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.config = config
        self.lock = threading.RLock()
        self.transport = Transport(comm)
        self.session = 0
        self.job_tag = None                    # unique to this runtime, same on every rank
        self.node_index = node_index
        self.on_exit = on_exit                 # how this rank leaves the job (hard path)
        self.parent_pid = os.getppid() if watch_parent else None
        self.executors = list(range(1, self.size)) or [0]
        self.capacities = capacities           # rank -> {resource: amount}, same on every rank
        self.detected_capacities = capacities  # what the ranks offered before init() declared
        self.feasible = set()                  # resource requests known to fit some rank
        self.executes = self.rank in self.executors
        self._ids = itertools.count(1)
        self.tls = threading.local()

        # Ownership: objects this rank owns, or holds for a task it runs.
        self.objects = {}                      # object_id -> (kind, payload)
        self.pending = {}                      # owned object_id -> task_id not finished yet
        self.callbacks = defaultdict(list)     # object_id -> [fn(obj)] fired when it arrives
        self.fetching = set()                  # object ids asked of their owners
        self.fetched = OrderedDict()           # object id -> copy of an object owned elsewhere
        self.fetched_bytes = 0
        self.arrivals = 0                      # objects delivered so far (wakes waiters)
        self.store = store                     # this node's object store
        self.cache_limit = (store.capacity // 4) if store is not None else 0
        self.copies = NodeCopies(self)         # objects of other nodes, copied to this one
        self.refs = RefTracker(self)           # borrowers and holds (distributed counting)
        self.tasks = {}                        # task_id -> TaskRecord (owner side)
        self.pins = defaultdict(int)           # owned object id -> submitted tasks using it
        self.refcounts = defaultdict(int)
        self.escaped = set()
        self.ref_events = deque()

        # Execution: tasks that arrived here.
        self.waiting = {}                      # task_id -> [spec, dep_objects, missing count]
        self.ready = deque()                   # (spec, dep_objects)
        self.actor_ready = deque()             # actor work for the serving threads (callables)
        self.functions = {}                    # func_id -> callable
        self.executing = 0                     # tasks running on this rank's threads
        self.cancelled = set()                 # task ids cancelled before they arrived
        self.submitted = 0
        self.api_used = 0.0                    # when user code last submitted here

        self.scheduler = GlobalScheduler(
            {r: capacities[r] for r in self.executors}, config.prefetch,
            config.queue_seconds) if self.rank == 0 else None
        self.node = NodeLoad(node_comm, node_comm.allgather(self.rank), set(self.executors))
        self.queue_limit = 1 + config.prefetch
        self.actor_client = ActorClient(self)  # calls to actors, actors created here
        self.actor_host = ActorHost(self)      # actors living on this rank
        self.actor_directory = ActorDirectory(self) if self.rank == 0 else None

        self.stopping = False
        self.broken = None
        self.byes = set()
        self.worker_pids = []                  # pids of the workers that said goodbye
        self.fg_polling = 0                    # threads polling in a loop right now
        self.serving = 1 if self.executes else 0   # threads able to pick up the next task
        self.sleepers = []                     # [done, event] of tasks blocked in get
        self.in_user_code = False              # the script or a task is running on this rank
        self.handlers = {
            Msg.TASK: self._on_task, Msg.SPILL: self._on_spill, Msg.RESULT: self._on_result,
            Msg.DONE: self._on_done, Msg.BLOCKED: self._on_blocked,
            Msg.UNBLOCKED: self._on_unblocked, Msg.GET_OBJECT: self._on_get_object,
            Msg.OBJECT: self._on_object, Msg.CANCEL: self._on_cancel,
            Msg.SHUTDOWN: self._on_shutdown, Msg.RESET: self._on_reset, Msg.BYE: self._on_bye,
            Msg.BATCH: self._on_batch, Msg.FETCH: self.copies.on_fetch, Msg.FREE: self._on_free,
            Msg.BORROW: self.refs.on_borrow, Msg.ACK: self.refs.on_ack,
            Msg.UNBORROW: self.refs.on_unborrow, Msg.HANDOFF: self.refs.on_handoff,
            Msg.RMA_OPEN: self.copies.on_rma_open, Msg.RMA_READY: self.copies.on_rma_ready,
            Msg.RMA_CLOSE: self.copies.on_rma_close, Msg.RMA_SERVE: self.copies.on_rma_serve,
            Msg.RMA_DONE: self.copies.on_rma_done, Msg.RMA_GONE: self.copies.on_rma_gone,
            Msg.ACTOR_CALL: self.actor_host.on_call, Msg.ACTOR_START: self.actor_host.on_start,
            Msg.ACTOR_PLACED: self.actor_client.on_placed, Msg.REPLY: self.actor_client.on_reply,
            Msg.ACTOR_RELEASE: self._on_actor_release, Msg.ACTOR_KILL: self._on_actor_kill,
        }
        if self.actor_directory is not None:
            directory = self.actor_directory
            self.handlers.update({
                Msg.ACTOR_CREATE: directory.on_create, Msg.ACTOR_LOOKUP: directory.on_lookup,
                Msg.ACTOR_GONE: directory.on_gone, Msg.QUERY: directory.on_query})
        self.futures_pending = 0               # futures of refs not completed yet
        self._background = threading.Thread(target=self._background_loop, name="hpcray-progress",
                                            daemon=True)
        self._background.start()
        if self.rank == 0 and self.executes:   # alone, the head also executes tasks
            threading.Thread(target=self.serve, name="hpcray-executor", daemon=True).start()

    # ------------------------------------------------------------------ ids and ownership
    def new_id(self, count=1):
        first = next(self._ids)
        for _ in range(count - 1):
            next(self._ids)
        return make_id(self.rank, first)

    def _process_ref_events(self):
        events = self.ref_events
        refcounts = self.refcounts
        rank = self.rank
        while events:
            object_id, delta = events.popleft()
            if object_id >> OWNER_SHIFT != rank:
                self.refs.count(object_id, delta)  # a borrowed ref
                continue
            if delta == 0:
                self.escaped.add(object_id)
                continue
            count = refcounts[object_id] + delta
            if count > 0:
                refcounts[object_id] = count
            else:
                del refcounts[object_id]
                self._maybe_free(object_id)

    def _maybe_free(self, object_id):
        if (object_id not in self.escaped and not self.pins.get(object_id)
                and not self.refcounts.get(object_id) and object_id not in self.pending
                and not self.callbacks.get(object_id) and not self.refs.keeps(object_id)):
            obj = self.objects.pop(object_id, None)
            if obj is not None:
                self._discard(obj)
                self.refs.freed(object_id)     # release the refs its pickle held
            if object_id in self.actor_client.owned:   # an actor's token: no handle is left
                self.actor_client.release(object_id)

    def _discard(self, obj):
        """An object nobody needs: release its primary copy in its node's store, if any."""
        if obj[0] != STORED:
            return
        node, writer, slot = obj[1][:3]
        if node == self.node_index and self.store is not None:
            self.store.free(slot)
        else:
            self.transport.send(writer, (Msg.FREE, slot))

    def _on_free(self, slot):
        self.store.free(slot)

    # ------------------------------------------------------------------ progress
    def progress(self):
        """Handle what has arrived (caller holds the lock); return the number of messages."""
        if self.ref_events:
            self._process_ref_events()
        # Large messages move in pieces that need both ends inside MPI: while a transfer is
        # in flight it counts as activity, so that the waiting loops keep polling hot.
        transfers = self.copies.progress() if self.copies.busy() else 0
        if self.store is not None and self.store.released:
            self.store.settle()                # views that died since: unpin their runs
        handled = self.transport.poll(self._handle) + transfers
        scheduler = self.scheduler
        if scheduler is not None and scheduler.freed:
            if scheduler.queue:
                self._dispatch(scheduler.drain())
            else:
                scheduler.freed.clear()
        return handled

    def _handle(self, message):
        self.handlers[message[0]](*message[1:])

    def _on_batch(self, messages):
        for message in messages:
            self._handle(message)

    def _background_loop(self):
        """Serve messages while every thread of this rank is busy in user code."""
        interval = self.config.background_poll
        next_check = 0.0
        # Plain sleeps, not Event waits: this loop turns every millisecond, and a wait made of
        # Python frames churning that fast can crash faulthandler's all-thread stack dump
        # (kill -USR1), the first tool for a job that hangs.
        try:
            while not self.stopping:
                if self.parent_pid is not None and time.monotonic() > next_check:
                    next_check = time.monotonic() + 0.5
                    self._check_launcher()
                if self.futures_pending and not self.fg_polling:
                    # Someone waits on a Future (``ref.future()``, ``await ref``) and no
                    # thread of the rank polls: poll often until it completes.
                    time.sleep(FUTURE_POLL)
                else:
                    # Polling matters only while user code holds every other thread.
                    time.sleep(interval if self.in_user_code else 0.02)
                    if not self.in_user_code or self.fg_polling or self.stopping:
                        continue
                    if time.monotonic() - self.api_used < interval:
                        continue               # the caller is calling in: it polls itself
                with self.lock:
                    if not self.stopping:
                        self.progress()
                        self.transport.flush()
        except BaseException as error:   # a bug here must not leave the job hanging
            self._fatal(f"progress thread failed: {error!r}")

    def _check_launcher(self):
        """A rank whose launcher (mpiexec's proxy, slurmstepd) died is orphaned: leave."""
        if os.getppid() != self.parent_pid:
            sys.stderr.write(f"hpcray: rank {self.rank}: the launcher process is gone; exiting\n")
            sys.stderr.flush()
            os._exit(1)

    def wait_until(self, done, deadline=None):
        """Wait until ``done()`` (checked under the lock) or the deadline; return which.

        A task that waits hands its rank's execution slot to another thread (see
        :meth:`serve`), so a rank blocked in ``get`` keeps running other tasks and resumes
        as soon as what it waits for arrives, whatever those tasks wait for: nested tasks
        deeper than the number of ranks cannot deadlock. Anything else (the driver) polls.
        """
        stack = getattr(self.tls, "stack", None)
        if stack:
            return self._wait_in_task(stack[-1], done, deadline)
        return self._poll_until(done, deadline)

    def _poll_until(self, done, deadline):
        backoff = Backoff(self.config.spin_seconds, self.config.poll_max_sleep)
        with self.lock:
            self.fg_polling += 1
        try:
            while True:
                with self.lock:
                    if self.broken:
                        raise RuntimeBrokenError(self.broken)
                    activity = self.progress()
                    self.transport.flush()
                    if done():
                        return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                if activity:
                    backoff.reset()
                else:
                    backoff.pause()
        finally:
            with self.lock:
                self.fg_polling -= 1

    def _wait_in_task(self, spec, done, deadline):
        # A serving thread lends its rank's slot while it waits; other threads running
        # user code (a threaded actor's) just sleep: the serving threads keep polling.
        lend = getattr(self.tls, "serving", False)
        with self.lock:
            self.progress()
            if done():
                return True
            self._note_blocked(spec)
            self.transport.flush()
            sleeper = [done, threading.Event()]
            self.sleepers.append(sleeper)
            if lend:
                self.serving -= 1
                if self.serving == 0:
                    self._start_server()
        try:
            while True:
                # Each blocked task sleeps on its own event, set by whoever delivers what it
                # waits for: no thundering herd when hundreds of nested tasks are blocked.
                timeout = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if timeout > 0:
                    sleeper[1].wait(timeout)
                with self.lock:
                    if self.broken:
                        raise RuntimeBrokenError(self.broken)
                    if done():
                        return True
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    sleeper[1].clear()
        finally:
            with self.lock:
                self.sleepers.remove(sleeper)
                if lend:
                    self.serving += 1
                self._note_unblocked(spec)

    def _wake_sleepers(self):
        for done, event in self.sleepers:
            if not event.is_set() and done():
                event.set()

    def _start_server(self):
        self.serving += 1
        threading.Thread(target=self.serve, args=(True,), name="hpcray-executor",
                         daemon=True).start()

    def serve(self, helper=False):
        """Execute tasks that arrive until the job ends (lock not held by the caller).

        The main thread of a worker serves for the whole job. When the task a server runs
        blocks in ``get``, a helper thread takes over serving; once the blocked task resumes
        and finishes, surplus helpers retire, so one thread serves when nothing is blocked.
        """
        backoff = Backoff(self.config.spin_seconds, self.config.poll_max_sleep)
        self.tls.serving = True
        with self.lock:
            self.fg_polling += 1
        try:
            while not self.stopping:
                item = None
                with self.lock:
                    if helper and self.serving > 1:
                        self.serving -= 1
                        return
                    activity = self.progress()
                    if self.actor_ready:       # actor work first: calls are latency-bound
                        item = self.actor_ready.popleft()
                        self.fg_polling -= 1
                    elif self.ready:
                        item = self.ready.popleft()
                        self.fg_polling -= 1
                    # Results of a burst of short tasks leave together, unless they pile up.
                    if not (self.ready or self.actor_ready) or self.transport.queued >= 64:
                        self.transport.flush()
                if item is not None:
                    try:
                        if callable(item):
                            item()
                        else:
                            worker.run_task(self, *item)
                    finally:
                        with self.lock:
                            self.fg_polling += 1
                    backoff.reset()
                elif activity:
                    backoff.reset()
                else:
                    backoff.pause()
        finally:
            with self.lock:
                self.fg_polling -= 1

    def _note_blocked(self, spec):
        """The running task waits: lend its slot to other work (lock held)."""
        if spec.actor_id is not None:          # actor calls are not counted as load
            return
        self.node.add(-1)
        if spec.via_head:
            self.transport.send(0, (Msg.BLOCKED, spec.task_id))

    def _note_unblocked(self, spec):
        if spec.actor_id is not None:
            return
        self.node.add(+1)
        if spec.via_head:
            self.transport.send(0, (Msg.UNBLOCKED, spec.task_id))

    # ------------------------------------------------------------------ submission (owner)
    def submit(self, spec, dep_ids):
        """Register ``spec`` as owned here and send it where it should run (lock held)."""
        key = tuple(spec.resources.items())
        if key not in self.feasible:
            check_feasible(self.capacities, spec.resources, f"task {spec.name}")
            self.feasible.add(key)
        record = self._own(spec, dep_ids)
        record.where = self._place(spec)
        self.api_used = time.monotonic()
        self.submitted += 1
        if self.submitted & 15 == 0 and (self.transport.queued or self.scheduler is not None
                                         and self.scheduler.queue):
            # A long burst of submissions: every 16 tasks, send what is queued and take in
            # results, so executors are fed while the caller is still submitting.
            self.progress()
            self.transport.flush()

    def _own(self, spec, dep_ids):
        """Register a task (or call) submitted here: its results pending, the arguments this
        rank owns pinned until it is done; return its record."""
        for object_id in spec.return_ids():
            self.pending[object_id] = spec.task_id
        for object_id in dep_ids:
            if owner_of(object_id) == self.rank:
                self.pins[object_id] += 1
        record = self.tasks[spec.task_id] = TaskRecord(spec, None)
        return record

    def _node_hint(self, spec):
        """The node whose store holds most of the bytes of the arguments this rank knows."""
        weights = {}
        for object_id in spec.deps:
            obj = self.objects.get(object_id) or self.copies.held.get(object_id)
            if obj is not None and obj[0] == STORED:
                weights[obj[1][0]] = weights.get(obj[1][0], 0) + obj[1][3]
        return max(weights, key=weights.get) if weights else None

    def node_of_object(self, object_id):
        """The node whose store holds, or will hold, a large object, as far as this rank knows
        (lock held): where it is stored, or the node of the rank its pending task was sent to.
        None for small objects (they travel inline) and unknown ones (a task queued at, or
        spilled to, the head; an object owned elsewhere and not fetched)."""
        obj = self.objects.get(object_id) or self.fetched.get(object_id)
        if obj is not None:
            return obj[1][0] if obj[0] == STORED else None
        task_id = self.pending.get(object_id)
        record = self.tasks.get(task_id) if task_id is not None else None
        if record is None:
            return None
        rank = record.where
        if self.scheduler is not None and record.spec.actor_id is None:
            rank = self.scheduler.where(task_id)       # the head placed it (None: queued)
        if rank is None or (rank == 0 and self.size > 1):  # rank 0 runs tasks only alone
            return None
        return self.node_of[rank]

    def _place(self, spec):
        if spec.deps and spec.node_hint is None:      # an explicit hint is kept
            spec.node_hint = self._node_hint(spec)
        if self.rank == 0:
            spec.via_head = True
            target = self.scheduler.place(spec)
            if target is not None:
                self.transport.send(target, (Msg.TASK, spec))
            return 0 if target is None else target
        local = spec.node_hint is None or spec.node_hint == self.node_index
        target = self.node.pick(self.queue_limit, self.capacities, spec.resources) if local else None
        if target is None:
            spec.via_head = True
            self.transport.send(0, (Msg.SPILL, spec))
            return 0
        spec.via_head = False
        self.node.placed(target)               # counted now: the next pick sees it
        self.transport.send(target, (Msg.TASK, spec))
        return target

    def _on_spill(self, spec):
        target = self.scheduler.place(spec)
        if target is not None:
            self.transport.send(target, (Msg.TASK, spec))

    def _dispatch(self, placed):
        for target, spec in placed:
            self.transport.send(target, (Msg.TASK, spec))

    def _on_done(self, task_id, seconds):
        self.scheduler.on_done(task_id, seconds)

    def _on_blocked(self, task_id):
        self.scheduler.on_blocked(task_id, True)

    def _on_unblocked(self, task_id):
        self.scheduler.on_blocked(task_id, False)

    def _on_result(self, task_id, results, seconds=None, executor=None, contained=None):
        if self.ref_events:                    # refs created since the last poll count too
            self._process_ref_events()
        record = self.tasks.pop(task_id, None)
        unacked = set()
        for object_id, obj in results:
            if self.pending.pop(object_id, None) is None:
                continue                       # stale (an old session) or already cancelled
            if (self.refcounts.get(object_id) or object_id in self.escaped
                    or object_id in self.callbacks or object_id in self.pins
                    or self.refs.keeps(object_id)):
                self.objects[object_id] = obj
                if contained and object_id in contained:
                    unacked |= self.refs.contain(object_id, contained[object_id])
            else:
                self._discard(obj)             # every ref was dropped before it was done
                if object_id in self.actor_client.owned:
                    self.actor_client.release(object_id)
            self._fire(object_id, obj)
        if contained and executor is not None:
            self.refs.took_over(task_id, executor, unacked)
        if record is not None:
            self._unpin(record.spec)
            if record.contained:
                self.refs.release(record.contained)
        if self.rank == 0:
            self.scheduler.on_done(task_id, seconds)

    def _unpin(self, spec):
        for object_id in spec.deps:
            if owner_of(object_id) == self.rank and object_id in self.pins:
                self.pins[object_id] -= 1
                if self.pins[object_id] <= 0:
                    del self.pins[object_id]
                    self._maybe_free(object_id)

    def _fire(self, object_id, obj):
        self.arrivals += 1
        callbacks = self.callbacks.pop(object_id, None)
        if callbacks:
            for callback in callbacks:
                callback(obj)
        if self.sleepers:
            self._wake_sleepers()

    # ------------------------------------------------------------------ object access
    def lookup(self, object_id, callback, local=True):
        """Call ``callback(obj)`` once the object is available here (lock held).

        With ``local``, an object stored on another node is first copied into this node's
        store, so that the callback gets something it can read in place.
        """
        if local:
            callback = self.copies.localizing(object_id, callback)
        obj = self.objects.get(object_id) or self.fetched.get(object_id)
        if obj is not None:
            callback(obj)
            return
        owner = owner_of(object_id)
        if owner == self.rank:
            if object_id in self.pending:
                self.callbacks[object_id].append(callback)
            else:
                callback(lost(object_id))
            return
        self.callbacks[object_id].append(callback)
        if object_id not in self.fetching:
            self.fetching.add(object_id)
            self.transport.send(owner, (Msg.GET_OBJECT, object_id, self.rank))

    def _on_get_object(self, object_id, requester):
        # No need to mark it escaped: a rank learns an id either from a pickled ref (marked
        # then) or as a task's argument (pinned until the task is done).
        self.lookup(object_id, lambda obj: self.transport.send(requester, (Msg.OBJECT, object_id, obj)),
                    local=False)

    def _on_object(self, object_id, obj):
        self.fetching.discard(object_id)
        self._fire(object_id, obj)

    def _localized(self, object_id, obj):
        """Objects arrived (a copy from another node): wake whoever waits (lock held)."""
        self.arrivals += 1
        if self.sleepers:
            self._wake_sleepers()

    def await_borrows(self, ids):
        """Register as borrower of the foreign refs among ``ids`` and wait for the owners'
        ACKs (the value they came in may go away right after)."""
        if not ids:
            return
        with self.lock:
            pending = self.refs.register(ids)
            self.transport.flush()
        if pending:
            unacked = self.refs.unacked
            self.wait_until(lambda: not (pending & unacked))

    def put_object(self, obj):
        object_id = self.new_id()
        self.objects[object_id] = obj
        return object_id

    def get_objects(self, object_ids, timeout=None):
        """Return the stored objects for ``object_ids``, waiting for them (bounded by timeout).

        Objects this rank owns are read where they land (no callback per object: a get of
        thousands of task results costs a scan, amortized O(1) per object as results arrive);
        objects owned elsewhere are fetched once each.
        """
        found = {}
        rank = self.rank
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        remaining = deque()
        with self.lock:
            for object_id in object_ids:
                if object_id >> OWNER_SHIFT == rank:
                    obj = self.objects.get(object_id)
                    if obj is not None:
                        found[object_id] = obj
                    elif object_id in self.pending:
                        remaining.append(object_id)
                    else:
                        found[object_id] = lost(object_id)
                elif object_id not in found:
                    obj = self.fetched.get(object_id)
                    if obj is not None:
                        found[object_id] = obj
                    else:
                        remaining.append(object_id)
                        self.lookup(object_id, lambda obj, oid=object_id: found.__setitem__(oid, obj))
            self.transport.flush()
        pending = self.pending

        def done():
            while remaining:
                object_id = remaining[0]
                if object_id in found:
                    remaining.popleft()
                elif object_id >> OWNER_SHIFT == rank and object_id not in pending:
                    found[object_id] = self.objects.get(object_id) or lost(object_id)
                    remaining.popleft()
                else:
                    return False
            return True
        if remaining and not self.wait_until(done, deadline):
            raise GetTimeoutError(
                f"get timed out after {timeout} s: {len(set(remaining))} of "
                f"{len(set(object_ids))} objects not ready")
        foreign = [oid for oid, obj in found.items()
                   if obj[0] == STORED and obj[1][0] != self.node_index]
        if foreign:                            # stored on another node: copy here first
            local = {}
            with self.lock:
                for oid in foreign:
                    self.copies.localizing(oid, lambda obj, oid=oid: local.__setitem__(oid, obj))(found[oid])
                self.transport.flush()
            if not self.wait_until(lambda: len(local) == len(foreign), deadline):
                raise GetTimeoutError(f"get timed out after {timeout} s copying "
                                      f"{len(foreign) - len(local)} objects from other nodes")
            found.update(local)
        return [found[object_id] for object_id in object_ids]

    def _is_ready(self, object_id):
        if object_id >> OWNER_SHIFT == self.rank:
            return object_id not in self.pending
        return object_id in self.fetched

    def ready_set(self, object_ids, num_returns, timeout):
        """Object ids among ``object_ids`` that are ready, waiting until ``num_returns`` are.

        Readiness of owned objects is local state; objects owned elsewhere are fetched (once
        each) into the ``fetched`` cache, as Ray's ``fetch_local`` does. The ready set is only
        recomputed when something arrived, so waiting on many refs stays cheap.
        """
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        state = {"seen": -1, "ready": set()}

        def done():
            if state["seen"] != self.arrivals:
                state["seen"] = self.arrivals
                state["ready"] = {oid for oid in object_ids if self._is_ready(oid)}
            return len(state["ready"]) >= num_returns
        with self.lock:
            if not done():
                for object_id in object_ids:
                    if object_id >> OWNER_SHIFT != self.rank and object_id not in self.fetched:
                        self.lookup(object_id, lambda obj, oid=object_id: self._cache(oid, obj))
                self.transport.flush()
        if not done():
            self.wait_until(done, deadline)
        with self.lock:
            state["seen"] = -1
            done()
        return state["ready"]

    def _cache(self, object_id, obj):
        """Keep a fetched copy of an object owned elsewhere (bounded, least recent out)."""
        fetched = self.fetched
        if object_id in fetched:
            return
        fetched[object_id] = obj
        self.fetched_bytes += serialization.nbytes(obj)
        while len(fetched) > 4096 or self.fetched_bytes > self.cache_limit:
            _, old = fetched.popitem(last=False)
            self.fetched_bytes -= serialization.nbytes(old)

    def future_of(self, ref):
        """A Future of the ref's value. Nobody waiting on it polls MPI, so while futures are
        outstanding the progress thread polls often (see ``_background_loop``)."""
        future = Future()

        def complete(obj):
            self.futures_pending -= 1
            if future.cancelled():             # e.g. asyncio.wait_for timed out on it
                return
            try:
                with refs_capture("borrowed") as borrowed:
                    value = serialization.materialize(obj, self.store)
                if borrowed:
                    self.refs.register(borrowed)   # in a handler: no wait for the ACK
            except BaseException as error:
                if not future.cancelled():
                    future.set_exception(error)
            else:
                if not future.cancelled():
                    future.set_result(value)
        with self.lock:
            self.futures_pending += 1
            self.lookup(ref.id, lambda obj: complete(obj))
            self.transport.flush()
        return future

    # ------------------------------------------------------------------ execution
    def _on_task(self, spec):
        if spec.session != self.session:
            return
        if spec.task_id in self.cancelled:
            self.cancelled.discard(spec.task_id)
            if not spec.via_head:
                self.node.taken_in(spec.owner)     # settle the submitter's count
                self.node.add(-1)
            self._send_cancelled(spec, via_head=spec.via_head)
            return
        if spec.via_head:
            self.node.add(+1)
        else:
            self.node.taken_in(spec.owner)     # placed by a rank of this node
        dep_objects = {}
        if not spec.deps:
            self.ready.append((spec, dep_objects))
            return
        missing = set(spec.deps)
        entry = self.waiting[spec.task_id] = [spec, dep_objects, len(missing)]

        def arrived(obj, object_id):
            if self.waiting.get(spec.task_id) is not entry:
                return                          # cancelled meanwhile
            dep_objects[object_id] = obj
            entry[2] -= 1
            if entry[2] == 0:
                del self.waiting[spec.task_id]
                self.ready.append((spec, dep_objects))
        for object_id in missing:
            self.lookup(object_id, lambda obj, oid=object_id: arrived(obj, oid))

    def finish_task(self, spec, results, seconds, contained=None):
        """Send a task's results to its owner and release its slot (lock held).

        ``contained``: ``{object id: [ids of refs its pickle holds]}``; this rank holds them
        until the owner has taken them over (``HANDOFF``)."""
        self.node.add(-1)
        if spec.session != self.session:
            return
        self.send_results(spec, results, seconds, contained)
        if spec.via_head and spec.owner != 0:
            self.transport.send(0, (Msg.DONE, spec.task_id, seconds))
        if not self.ready:
            self.transport.flush()             # nothing queued behind it: answer right away

    def send_results(self, spec, results, seconds, contained):
        """Hand results to the owner of ``spec`` (lock held)."""
        if spec.session != self.session:
            return
        if contained:
            self.refs.result_held(spec.task_id, [i for ids in contained.values() for i in ids])
        if spec.owner == self.rank:
            self._on_result(spec.task_id, results, seconds, self.rank, contained)
        else:
            self.transport.send(spec.owner, (Msg.RESULT, spec.task_id, results, seconds,
                                             self.rank, contained))

    # ------------------------------------------------------------------ actors
    def submit_call(self, spec, dep_ids):
        """Register a method call as owned here and send it to its actor (lock held)."""
        record = self._own(spec, dep_ids)
        record.where = self.actor_client.route(spec)
        self.api_used = time.monotonic()

    def submit_actor(self, spec, dep_ids):
        """Register a new actor's construction (its token pending) and send it to the head."""
        from .actor_host import construction_task
        self._own(construction_task(spec), dep_ids).where = 0
        self.actor_client.owned[spec.actor_id] = spec
        self.api_used = time.monotonic()

    def abandon_actor(self, spec):
        """Undo :meth:`submit_actor` (a named actor that already existed)."""
        self.actor_client.owned.pop(spec.actor_id, None)
        self.pending.pop(spec.actor_id, None)
        record = self.tasks.pop(spec.actor_id, None)
        if record is not None:
            self._unpin(record.spec)
            if record.contained:
                self.refs.release(record.contained)

    def _on_actor_release(self, actor_id):
        if actor_id in self.actor_host.actors or self.actor_directory is None:
            self.actor_host.on_release(actor_id)
        else:                                  # sent to the head: it knows where it went
            self.actor_directory.on_release(actor_id)

    def _on_actor_kill(self, actor_id, reason):
        if actor_id in self.actor_host.actors or self.actor_directory is None:
            self.actor_host.on_kill(actor_id, reason)
        else:
            self.actor_directory.on_kill(actor_id, reason)

    def ask_head(self, kind, *payload):
        """Ask the head's actor directory a question and wait for the answer (lock not held)."""
        with self.lock:
            token = self.actor_client.new_token()
            if self.actor_directory is not None:
                self.actor_directory.on_query(token, kind, payload, self.rank)
            else:
                self.transport.send(0, (Msg.QUERY, token, kind, payload, self.rank))
                self.transport.flush()
        replies = self.actor_client.replies
        self.wait_until(lambda: token in replies)
        with self.lock:
            status, answer = replies.pop(token)
        if status == "error":
            raise answer
        return answer

    # ------------------------------------------------------------------ cancellation
    def cancel(self, object_id):
        task_id = self.pending.get(object_id)
        if task_id is None:
            return
        record = self.tasks.get(task_id)
        if record is None:
            return
        if record.spec.actor_id is not None:   # a method call: its actor's rank drops it
            if record.where is None:
                self.actor_client.cancel_waiting(record.spec)
            elif record.where == self.rank:
                self._on_cancel(task_id)
            else:
                self.transport.send(record.where, (Msg.CANCEL, task_id))
            return
        if self.rank == 0:
            self._on_cancel(task_id)
        else:
            self.transport.send(record.where, (Msg.CANCEL, task_id))

    def _on_cancel(self, task_id):
        if self.rank == 0:
            spec = self.scheduler.cancel_queued(task_id)
            if spec is not None:
                self._send_cancelled(spec)
                return
            where = self.scheduler.where(task_id)
            if where is not None and where != self.rank:
                self.transport.send(where, (Msg.CANCEL, task_id))
                return
        entry = self.waiting.pop(task_id, None)
        if entry is not None:
            self.node.add(-1)
            self._send_cancelled(entry[0], via_head=entry[0].via_head)
            return
        for item in self.ready:
            if item[0].task_id == task_id:
                self.ready.remove(item)
                self.node.add(-1)
                self._send_cancelled(item[0], via_head=item[0].via_head)
                return
        if self.actor_host.cancel(task_id):    # a method call waiting in a mailbox here
            return
        self.cancelled.add(task_id)            # still on its way here: drop it on arrival

    def _send_cancelled(self, spec, via_head=False):
        error = (serialization.ERROR, serialization.dumps(TaskCancelledError(f"{spec.task_id:016x}")))
        results = [(object_id, error) for object_id in spec.return_ids()]
        if spec.owner == self.rank:
            self._on_result(spec.task_id, results, None)
        else:
            self.transport.send(spec.owner, (Msg.RESULT, spec.task_id, results, None))
        if via_head and spec.owner != 0:
            self.transport.send(0, (Msg.DONE, spec.task_id, None))

    # ------------------------------------------------------------------ sessions and shutdown
    def reset_session(self, capacities=None):
        """Start a new session (``shutdown()`` then ``init()``): forget every object and task."""
        with self.lock:
            self.session += 1
            if capacities is not None:
                self.capacities = capacities
                self.feasible = set()
            self._forget()
            if self.scheduler is not None:
                self.scheduler.reset({r: self.capacities[r] for r in self.executors})
            for rank in range(1, self.size):
                self.transport.send(rank, (Msg.RESET, self.session, self.capacities))
            self.transport.flush()

    def _forget(self):
        failed = list(self.callbacks.items())
        for obj in self.objects.values():
            self._discard(obj)
        self.copies.forget()
        self.objects.clear(); self.pending.clear(); self.callbacks.clear(); self.fetching.clear()
        self.fetched.clear(); self.fetched_bytes = 0
        self.tasks.clear(); self.pins.clear(); self.escaped.clear(); self.waiting.clear()
        self.refs.clear()
        self.ready.clear()
        self.actor_ready.clear()
        self.actor_host.forget()
        self.actor_client.forget()
        if self.actor_directory is not None:
            self.actor_directory.forget()
        for object_id, callbacks in failed:
            for callback in callbacks:
                callback(lost(object_id))

    def _on_reset(self, session, capacities):
        self.session = session
        self.capacities = capacities
        self.feasible = set()
        dropped = len(self.waiting) + len(self.ready)
        self.node.add(-dropped)
        self._forget()

    def shutdown_workers(self):
        """Head: tell every worker to leave and wait (bounded) for their goodbyes."""
        with self.lock:
            for rank in range(1, self.size):
                self.transport.send(rank, (Msg.SHUTDOWN,))
            self.transport.flush()
            self.transport.close_to_all_but(-1)
        deadline = time.monotonic() + self.config.shutdown_grace
        backoff = Backoff(0.0, 0.005)
        while len(self.byes) < self.size - 1 and time.monotonic() < deadline:
            with self.lock:
                self.progress()
                self.transport.flush()
            backoff.pause()
        with self.lock:
            self.stopping = True
            self.transport.drain(1.0)
        return len(self.byes) == self.size - 1

    def _on_bye(self, rank, pid):
        self.byes.add(rank)
        self.worker_pids.append(pid)

    def _on_shutdown(self):
        self.stopping = True
        self.transport.close_to_all_but(0)     # the others are leaving too
        if self.executing:
            # A task still runs on the main thread: the job is over, so end this rank now.
            self.leave(hard=True)

    def leave(self, hard=False):
        """Worker: say goodbye to the head and leave the job (finalizing MPI)."""
        with self.lock:
            self.stopping = True
            self.transport.close_to_all_but(0)
            self.transport.send(0, (Msg.BYE, self.rank, os.getpid()))
            self.transport.drain(2.0)
        if hard and self.on_exit is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            self._close_windows()              # collective with the node's other ranks
            self.on_exit()

    def _fatal(self, reason):
        sys.stderr.write(f"hpcray: rank {self.rank}: {reason}; aborting the job\n")
        sys.stderr.flush()
        self.comm.Abort(70)

    def close(self):
        self.stopping = True
        if self._background is not threading.current_thread():
            self._background.join(timeout=1.0)
        self._close_windows()

    def _close_windows(self):
        """Free the windows: collective (the job's, then the node's), same order on all ranks."""
        self.copies.close_window()
        if self.store is not None:
            self.store.close()
            self.store = None
        self.node.close()


def lost(object_id):
    error = ObjectLostError(
        f"object {object_id:016x} is gone: it was freed, or belongs to a runtime that was shut down")
    return (serialization.ERROR, serialization.dumps(error))
