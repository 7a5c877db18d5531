"""The head's service (rank 0 only): placing tasks, and the head's side of the job's life.

* Placement: the head places the tasks it submits itself and those workers spill to it
  (``SPILL``) with the :class:`GlobalScheduler`; executors report tasks placed for other
  owners (``DONE``) and tasks that wait in ``get`` (``BLOCKED``/``UNBLOCKED``), and every turn
  of the head's progress loop places the queued tasks that fit now. :class:`HeadService` is
  also the router of the head's own tasks (``send``/``cancel``/``where``, as
  ``core/submission.NodePlacement`` is a worker's).
* Sessions: ``reset_session`` starts a new one on every rank (``RESET``).
* The end: ``shutdown_workers`` sends ``SHUTDOWN`` and counts the ``BYE``s.

All methods but :meth:`shutdown_workers` and :meth:`reset_session` run with the runtime lock
held.
"""
import sys
import time

from ..core.metrics import MetricsTable
from ..wire import messages, serialization
from ..wire.transport import Backoff
from .directory import ActorDirectory, answer
from .groups import GroupRegistry
from .placement_groups import PlacementGroups
from .scheduler import GlobalScheduler

CANCELS_REMEMBERED = 10000     # cancels sent to executors the head remembers (on_give_back)


class HeadService:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``config``, ``transport``,
    ``progress``, ``ownership`` (the head's own tasks finish there), ``execution``
    (answering cancelled tasks), ``lifecycle`` (the head's own session change) and
    ``liveness`` (which ranks died)."""

    def __init__(self, lock, job, config, transport, progress, ownership, execution, lifecycle,
                 liveness):
        self.lock = lock
        self.job = job
        self.config = config
        self.transport = transport
        self.progress = progress
        self.ownership = ownership
        self.execution = execution
        self.lifecycle = lifecycle
        self.liveness = liveness
        self.scheduler = GlobalScheduler(job.executing_capacities(), config.prefetch,
                                         config.queue_seconds)
        self.scheduler.node_of = job.node_of
        scheduler = self.scheduler
        self.placement_groups = scheduler.groups = PlacementGroups(
            lambda: scheduler.capacities, lambda rank: scheduler.held.get(rank), scheduler.hold,
            job.node_of)
        self.metrics = MetricsTable()          # application metrics of the whole job
        self.directory = None                  # directory.ActorDirectory (attach sets it)
        self.byes = set()
        self.cancels_sent = {}                 # task ids of cancels sent to executors (ordered)
        self.worker_pids = []                  # pids of the workers that said goodbye
        ownership.finished_listeners.append(self.scheduler.on_done)
        progress.turn_hooks.append(self.place_queued)

    # ------------------------------------------------------------------ placement
    def send(self, spec):
        """Router of the head's own tasks: place now, or queue at the head."""
        spec.via_head = True
        target = self.scheduler.place(spec)
        if target is not None:
            self.transport.send(target, messages.task(spec))
        elif self.scheduler.unschedulable:
            self._fail_unschedulable()
        return 0 if target is None else target

    def cancel(self, record, force=False, recursive=True):
        self.transport.send(0, messages.cancel_at_head(record.spec.task_id, force, recursive))

    def where(self, record):
        return self.scheduler.where(record.spec.task_id)   # None: still queued here

    def backlog(self):
        return self.scheduler.waiting()

    def on_spill(self, spec):
        """SPILL: a worker's node had no room for this task."""
        target = self.scheduler.place(spec)
        if target is not None:
            self.transport.send(target, messages.task(spec))
        elif self.scheduler.unschedulable:
            self._fail_unschedulable()

    def place_queued(self):
        """Each turn: place the queued tasks that fit now (some slot was freed)."""
        scheduler = self.scheduler
        if scheduler.freed:
            if (scheduler.queue or scheduler.pinned or scheduler.groups_freed
                    or (scheduler.released and self.placement_groups.pending)):
                groups_placed = scheduler.released and self.placement_groups.pending
                for target, spec in scheduler.drain():
                    self.transport.send(target, messages.task(spec))
                if scheduler.unschedulable:
                    self._fail_unschedulable()
                if groups_placed and self.directory.waiting:
                    self.directory.retry_waiting()     # (actors waiting in those groups)
            else:
                scheduler.freed.clear()

    def _fail_unschedulable(self):
        """Tasks whose strategy can never be met fail (TaskUnschedulableError), as in Ray."""
        failed, self.scheduler.unschedulable = self.scheduler.unschedulable, []
        for spec, reason in failed:
            self.execution.report_failed(spec, serialization.unschedulable(spec.name, reason))
    def on_give_back(self, rank, specs):
        """GIVE_BACK: tasks that found no room on ``rank`` for a while go elsewhere (a cancel
        sent there meanwhile is honoured here)."""
        forwarded = self.cancels_sent
        kept = []
        for spec in specs:
            if spec.task_id in forwarded and self.scheduler.unassign(spec.task_id, rank):
                self.execution.report_cancelled(spec)
            else:
                kept.append(spec)
        for target, spec in self.scheduler.take_back(rank, kept):
            self.transport.send(target, messages.task(spec))

    def on_done(self, task_id, seconds):
        """DONE: a task the head placed for another owner is over."""
        self.scheduler.on_done(task_id, seconds)

    def on_blocked(self, task_id):
        """BLOCKED: the task waits in get; lend its resources."""
        self.scheduler.on_blocked(task_id, True)

    def on_unblocked(self, task_id):
        self.scheduler.on_blocked(task_id, False)

    def on_cancel(self, task_id, force, recursive):
        """CANCEL_AT_HEAD: drop the task if it is queued here, else tell its executor."""
        spec = self.scheduler.cancel_queued(task_id)
        if spec is not None:
            self.execution.report_cancelled(spec)
            return
        where = self.scheduler.where(task_id)
        if where is not None:
            self.transport.send(where, messages.cancel(task_id, force, recursive))
            self.cancels_sent[task_id] = None  # (in case it comes back: on_give_back)
            if len(self.cancels_sent) > CANCELS_REMEMBERED:
                del self.cancels_sent[next(iter(self.cancels_sent))]

    # ------------------------------------------------------------------ placement groups
    def on_pg_create(self, token, bundles, strategy, name, owner, detached):
        """PG_CREATE: a new placement group (placed now if it fits, else pending)."""
        answer(self.transport.send, token, self.placement_groups.create, bundles, strategy, name,
               owner, detached)

    def on_pg_remove(self, token, group_id):
        """PG_REMOVE: remove a group: its reservations go back, the tasks waiting in it fail,
        its actors end."""
        def remove():
            for spec in self.placement_groups.remove(group_id):
                self.execution.report_failed(spec, serialization.unschedulable(
                    spec.name, "its placement group was removed"))
            self.directory.end_group(group_id)
            for target, spec in self.scheduler.drain():    # (pending groups, waiting work)
                self.transport.send(target, messages.task(spec))
            self.directory.retry_waiting()
            return True
        answer(self.transport.send, token, remove)

    def on_pg_table(self, token, group_id):
        """PG_TABLE: one group's description, or all of them (``group_id`` None)."""
        answer(self.transport.send, token,
               self.placement_groups.table if group_id is None
               else self.placement_groups.describe,
               *(() if group_id is None else (group_id,)))

    def on_pg_get(self, token, name):
        """PG_GET: the description of the group of that name."""
        answer(self.transport.send, token, self.placement_groups.by_name, name)

    def on_metrics(self, taken):
        """METRICS: what a rank and its worker processes recorded: into the job's table."""
        self.metrics.merge(taken)

    def on_metrics_snapshot(self, token):
        """METRICS_SNAPSHOT: the job's metrics table."""
        answer(self.transport.send, token, self.metrics.snapshot)

    def on_available(self, token):
        """AVAILABLE: the logical resources not taken right now."""
        answer(self.transport.send, token, self.scheduler.available)

    # ------------------------------------------------------------------ dead ranks
    def on_rank_lost(self, rank, how):
        """RANK_LOST: a rank saw ``rank`` die. The head declares it dead, once: nothing is
        placed there again, and every live rank learns it with the tasks placed there."""
        liveness = self.liveness
        if rank == 0 or rank in liveness.dead:
            return
        tasks = self.scheduler.remove_rank(rank)
        if self.scheduler.unschedulable:       # tasks waiting for its node, if it was the
            self._fail_unschedulable()         # node's last rank
        for target, spec in self.scheduler.drain():
            self.transport.send(target, messages.task(spec))
        sys.stderr.write(f"hpcray: rank {rank} (host {self.job.host_of[rank]}) died ({how}); "
                         f"the job goes on without it ({len(tasks)} task(s) placed there run "
                         f"again elsewhere)\n")
        sys.stderr.flush()
        for other in range(1, self.job.size):
            if other != rank and other not in liveness.dead:
                self.transport.send(other, messages.rank_dead(rank, how, tasks))
        self.transport.flush()
        liveness.on_rank_dead(rank, how, tasks)

    def hold(self, rank, request, sign):
        """An actor on ``rank`` holds ``request`` for its life (+1) or released it (-1)."""
        self.scheduler.hold(rank, request, sign)

    # ------------------------------------------------------------------ sessions
    def reset_session(self, capacities=None):
        """Start a new session on every rank (``shutdown()`` then ``init()``): forget every
        object, task and actor (lock not held)."""
        with self.lock:
            session = self.progress.session + 1
            self.lifecycle.new_session(session, capacities)
            self.scheduler.reset(self.job.executing_capacities())
            self.metrics.forget()
            for rank in range(1, self.job.size):
                self.transport.send(rank, messages.reset(session, self.job.capacities))
            self.transport.flush()

    # ------------------------------------------------------------------ the end
    def shutdown_workers(self, report_abandoned=True):
        """Tell every worker to leave and wait (bounded) for their goodbyes; return whether
        all said goodbye (lock not held). From SHUTDOWN on no rank starts a task, and the
        tasks running are abandoned, as Ray does when its driver exits; with
        ``report_abandoned`` the head says how many of the script's tasks were not finished,
        so that a task nobody waited for is never dropped silently."""
        with self.lock:
            self.progress.turn()               # results that already arrived count as done
            unfinished = len(self.ownership.tasks)
            if unfinished and report_abandoned:
                sys.stderr.write(
                    f"hpcray: the job ends with {unfinished} task(s) or actor call(s) "
                    f"submitted by the script not finished; they are abandoned (hpcray.get "
                    f"or hpcray.wait on their refs waits for them)\n")
                sys.stderr.flush()
            for rank in range(1, self.job.size):
                self.transport.send(rank, messages.shutdown())
            self.transport.flush()
            self.transport.close_to_all_but(-1)
        deadline = time.monotonic() + self.config.shutdown_grace
        backoff = Backoff(0.0, 0.005)
        workers = set(range(1, self.job.size))
        while workers - self.byes - self.liveness.dead and time.monotonic() < deadline:
            with self.lock:
                self.progress.turn()
                self.transport.flush()
            backoff.pause()
        with self.lock:
            self.progress.stopping = True
            self.transport.drain(1.0)
        return not workers - self.byes - self.liveness.dead

    def on_bye(self, rank, pid):
        """BYE: a worker acknowledged SHUTDOWN and leaves."""
        self.byes.add(rank)
        self.worker_pids.append(pid)


def attach(rt):
    """Give rank 0 the head's roles: placement and the job's life, the actor directory, the
    registry of collective groups."""
    head = HeadService(rt.lock, rt.job, rt.config, rt.transport, rt.progress, rt.ownership,
                       rt.execution, rt.lifecycle, rt.liveness)
    rt.submitter.set_placement(head)
    directory = ActorDirectory(rt.transport.send, rt.job.executing_capacities, head.hold,
                               rt.job.node_of, head.placement_groups)
    head.directory = directory
    groups = GroupRegistry(rt.transport.send, directory.placed_rank)
    rt.attach("head", head)
    rt.attach("directory", directory)
    rt.attach("groups", groups)
    rt.liveness.dead_listeners += [directory.on_rank_dead, groups.on_rank_dead]
