"""One rank's runtime: its roles, built and wired together.

Data flow of one task (``docs/architecture.md`` draws it larger)::

    driver / task on rank A (owner)           head (rank 0)                executor rank B
    -------------------------------           ------------------           ----------------------
    f.remote(x, ref)
      Submitter.submit: encode args, ids,
      ownership.register_task, ObjectRefs
      router.send(spec):
        on rank 0: head placement (GlobalScheduler.place) ----------------> TASK
        on a worker: NodePlacement ---- own node has room ----------------> TASK
                        `-- node busy --> SPILL --> head.on_spill --------> TASK
                                                                             | Execution.on_task:
                                                    GET_OBJECT <-------------' access.lookup deps
                                                    (owner answers OBJECT once it exists)
                                                                             v
                                                              ready queue -> serve -> invoke
    ownership.on_result <-------------------------------------------------- RESULT
    access.get returns                            DONE <------ (the head placed it for
                                                  head.on_done   another owner: free the slot)

The roles, from the bottom (each receives only the ones below it): ``progress`` (dispatch,
turns, the broken state), ``refs`` (reference counting), ``liveness`` (which ranks are
alive; what to do when one dies), ``waiting``, ``ownership``,
``access`` (get/wait/futures), ``execution`` (tasks that run here), ``submitter`` (the one
submission path), ``requests`` (questions to the head), ``lifecycle`` (sessions, leaving).
``launch/join.py`` builds a Runtime on every rank, then attaches the actors' roles
(``actors/``) everywhere and the head's (``head/``) on rank 0: :meth:`Runtime.attach`.

All state is guarded by one re-entrant lock, which is also the MPI lock: message handlers run
with it held, user code never does.
"""
import threading
import time

from ..store.copies import NodeCopies
from ..wire import messages
from ..wire.transport import Transport
from .access import ObjectAccess
from .events import EventLog, ProcessLoad
from .execution import Execution
from .lifecycle import Lifecycle
from .liveness import Liveness
from .ownership import Ownership
from .progress import Progress
from .refcount import RefTracker
from .requests import HeadRequests
from .submission import NodePlacement, Submitter
from .waiting import Waiting


OBJECTS_LISTED = 200       # owned objects each rank lists for list_objects and the dashboard
CHECK_EVERY = 0.05         # seconds between two looks at what this rank recorded


class Runtime:
    """The roles of one rank. ``comm`` is the runtime's private communicator (a ``Dup`` of
    the job's), ``job`` the JobView, ``store`` this node's NodeStore, ``node_load`` its load
    table. ``on_exit``: how this rank leaves the job at once; ``parent_pid``: the launcher
    process to watch (None: do not)."""

    # Roles of higher floors, attached by launch/join.py (:meth:`attach`).
    client = None          # actors/client.ActorClient (every rank)
    host = None            # actors/host.ActorHost (every rank)
    head = None            # head/service.HeadService (rank 0)
    directory = None       # head/directory.ActorDirectory (rank 0)
    groups = None          # head/groups.GroupRegistry (rank 0)
    observer = None        # head/observer.Observer (rank 0)

    def __init__(self, comm, config, job, store, node_load, on_exit=None, parent_pid=None):
        self.comm = comm
        self.config = config
        self.job = job
        self.store = store
        self.node_load = node_load
        self.lock = lock = threading.RLock()
        self.transport = transport = Transport(comm)
        # What this rank records for the state API, the timeline and the dashboard; the
        # head takes it in (``events_sink``, set by head/observer.py on rank 0).
        self.events = events = EventLog(config.record, config.status_interval)
        self.events_sink = None
        cache_limit = store.capacity // 4 if store is not None else 0
        # Late-bound callbacks: refs and copies report to roles built after them.
        self.refs = refs = RefTracker(job.rank, job.size, transport.send,
                                      on_unused=lambda object_id: self.ownership.maybe_free(object_id),
                                      acked=lambda: self.waiting.notify())
        self.copies = copies = NodeCopies(comm, store, transport, job.node_index,
                                          job.node_leaders, cache_limit, config.copy_fanout,
                                          on_arrival=lambda: self.waiting.notify())
        self.progress = progress = Progress(lock, job, transport, config, refs, store, copies,
                                            parent_pid)
        self.liveness = liveness = Liveness(lock, job, transport, progress, config)
        progress.background_hooks.append(liveness.check)
        self.waiting = waiting = Waiting(lock, progress, config)
        progress.broken_listeners.append(lambda reason: waiting.wake_all())
        self.ownership = ownership = Ownership(job, store, transport, refs, waiting.notify)
        refs.on_unused = ownership.maybe_free   # the late-bound callbacks, bound (hot paths)
        refs.acked = copies.on_arrival = waiting.notify
        self.access = access = ObjectAccess(lock, job, transport, progress, waiting, ownership,
                                            refs, copies, store, cache_limit)
        self.execution = execution = Execution(lock, job, config, transport, node_load, store,
                                               progress, refs, ownership, access)
        waiting.lender = execution
        execution.waiter = waiting
        self.placement = NodePlacement(job, transport, node_load, 1 + config.prefetch)
        self.submitter = submitter = Submitter(lock, job, config, transport, progress,
                                               ownership, refs, access, copies, store,
                                               self.placement)
        access.on_lost = submitter.reconstruct
        self.requests = requests = HeadRequests(lock, job, transport, waiting)
        liveness.dead_listeners += [submitter.on_rank_dead, access.on_rank_dead,
                                    refs.on_rank_dead, copies.on_rank_dead,
                                    execution.on_rank_dead]
        execution.events = ownership.events = submitter.events = access.events = events
        copies.on_transfer = events.transfer
        if config.record:
            events.probes += [ProcessLoad(), lambda: ownership.describe(OBJECTS_LISTED)]
            if store is not None and job.node_leaders[job.node_index] == job.rank:
                events.probes.append(self.store_load)
        progress.turn_hooks.append(self.send_events)
        self._attached = []
        self.lifecycle = Lifecycle(lock, job, transport, progress, [execution], store,
                                   node_load, copies, on_exit)
        self.lifecycle.forgetful += [copies, refs, submitter, ownership, access, requests,
                                     events]
        self.lifecycle.before_bye.append(lambda: self.send_events(final=True))
        for name, role in (("refs", refs), ("ownership", ownership),
                           ("access", access), ("execution", execution),
                           ("requests", requests), ("lifecycle", self.lifecycle),
                           ("copies", copies), ("liveness", liveness),
                           ("submitter", submitter)):
            progress.register(name, role)

    @property
    def rank(self):
        return self.job.rank

    def store_load(self):
        """A load probe of the node's first rank: its store."""
        store = self.store
        return {"store": {"capacity": store.capacity, "used": store.in_use(),
                          "objects": store.object_count(),
                          "spilled_bytes": store.spilled_bytes()}}

    def send_events(self, final=False):
        """A turn hook: what this rank recorded goes to the head every so often (lock
        held); ``final``: all of it now (the rank leaves, or the job ends)."""
        events = self.events
        now = time.monotonic()
        if now < events.next_check and not final:
            return 0                           # (every turn passes here: keep it short)
        events.next_check = now + CHECK_EVERY
        if final:
            events.next_sample = 0.0           # (a last sample of the load too)
        if events.due(now) or (final and events.has_news()):
            batch = events.take(now)
            if self.events_sink is not None:
                self.events_sink(self.job.rank, batch)
            elif final or not self.progress.stopping:
                self.transport.send(0, messages.events(self.job.rank, batch))
        return 0

    def is_cancelled(self, task_id):
        """Whether a task running on this rank was cancelled (``is_canceled()``)."""
        return self.execution.is_cancelled(task_id)

    def attach(self, name, role):
        """Add a role of a higher floor (actors, head): it handles the message kinds whose
        handler is ``name.<method>`` and, if it has ``forget()``, forgets with the session
        (before the core's roles do)."""
        setattr(self, name, role)
        self.progress.register(name, role)
        if hasattr(role, "forget"):
            self._attached.append(role)
            self.lifecycle.forgetful.insert(len(self._attached), role)
