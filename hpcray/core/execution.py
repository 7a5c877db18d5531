"""Executing: the tasks that arrive at this rank, its serving threads, and what a task's
results become.

A ``TASK`` waits here until its arguments are local (``access.lookup`` for each), then in the
ready queue; actor work (``actors/host.py``) comes as callables in the work queue. The
rank's serving threads take work from both (actor work first: calls are latency-bound) and
run it without the lock. The main thread of a worker serves for the whole job; when the task
a serving thread runs waits in ``get``, it lends the rank's slot (:meth:`Execution.lend`): a
helper thread takes over serving, and retires once the waiting task resumes, so one thread
serves when nothing is blocked.

Results go to the task's owner (``RESULT``, or straight to ``ownership`` when this rank owns
the task), and a task the head placed for another owner is reported to the head (``DONE``)
so it can free the slot. All methods run with the runtime lock held unless they say not.
"""
import threading
import time
from collections import deque

from ..wire import messages, serialization
from ..wire.transport import Backoff
from . import current, invoke, metrics, output
from .events import NOT_RECORDING


NO_DEPS = {}          # the arguments of a task that has none (shared, never written)
GIVE_BACK_SECONDS = 0.005  # least time with ready tasks and nothing started before they go back
WORKERS_WAIT = 0.0002 # longest sleep of a rank whose only work runs in worker processes


class PendingTask:
    """A task that arrived here: its spec, the argument objects that are here, and how many
    are still missing."""
    __slots__ = ("spec", "deps", "missing")

    def __init__(self, spec, deps, missing):
        self.spec = spec
        self.deps = deps                       # object id -> object record
        self.missing = missing


class Execution:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``config``, ``transport``,
    this node's ``node_load`` table and ``store``, ``progress``, ``refs`` (holds on refs in
    results), ``ownership`` (results of tasks this rank owns) and ``access`` (arguments)."""
    events = NOT_RECORDING                  # what this rank records (core/events.py)

    def __init__(self, lock, job, config, transport, node_load, store, progress, refs,
                 ownership, access):
        self.lock = lock
        self.job = job
        self.rank = job.rank
        self.config = config
        self.inline_limit = config.inline_limit
        self.transport = transport
        self.node_load = node_load
        self.store = store
        self.progress = progress
        self.refs = refs
        self.ownership = ownership
        self.access = access
        self.waiting = {}                      # task id -> PendingTask missing arguments
        self.ready = deque()                   # PendingTasks whose arguments are all here
        self.work = deque()                    # actor work for the serving threads (callables)
        self.functions = {}                    # func_id -> callable
        self.cancelled = set()                 # task ids cancelled before they arrived
        self.consumed = {}                     # generator task id -> items its caller took
        self.waiter = None                     # core/waiting.Waiting (the runtime sets it)
        self.serving = 1 if job.executes else 0   # threads able to pick up the next task
        # Where tasks run: None, on the serving threads; else the rank's worker processes
        # (``workers/pool.py``: ``has_room(spec)``, ``start(spec, deps)``,
        # ``ahead(spec, deps)``, ``flush()``, ``runs(spec)``, ``cancel(task_id, force,
        # recursive)``, ``set_blocked(spec, blocked)``, ``mean_seconds``), attached by
        # ``launch/join.py``.
        self.runner = None
        self.held_since = None                 # since when ready tasks found no room

    # ------------------------------------------------------------------ arriving tasks
    def on_task(self, spec):
        """TASK: run this task once its arguments are here."""
        node_load = self.node_load
        if spec.task_id in self.cancelled:
            self.cancelled.discard(spec.task_id)
            if not spec.via_head:
                node_load.taken_in(spec.owner)     # settle the submitter's count
                node_load.add(-1)
            self.report_cancelled(spec, tell_head=spec.via_head)
            return
        if spec.via_head:
            node_load.add(+1)
        else:
            node_load.taken_in(spec.owner)     # placed by a rank of this node
        if not spec.deps:
            self.ready.append(PendingTask(spec, NO_DEPS, 0))
            return
        missing = set(spec.deps)
        entry = self.waiting[spec.task_id] = PendingTask(spec, {}, len(missing))

        def arrived(obj, object_id):
            if self.waiting.get(spec.task_id) is not entry:
                return                          # cancelled meanwhile
            entry.deps[object_id] = obj
            entry.missing -= 1
            if entry.missing == 0:
                del self.waiting[spec.task_id]
                self.ready.append(entry)
        for object_id in missing:
            self.access.lookup(object_id, lambda obj, oid=object_id: arrived(obj, oid))

    def on_cancel(self, task_id, force=False, recursive=True):
        """CANCEL: drop a task that has not started (or will be dropped when it arrives);
        one running in a worker process gets KeyboardInterrupt, or (``force``) its process
        ends, and (``recursive``) the tasks it submitted are cancelled too."""
        if self.runner is not None and self.runner.cancel(task_id, force, recursive):
            return
        entry = self.waiting.pop(task_id, None)
        if entry is None:
            for item in self.ready:
                if item.spec.task_id == task_id:
                    entry = item
                    self.ready.remove(item)
                    break
        if entry is None:
            self.cancelled.add(task_id)        # still on its way here: drop it on arrival
            return
        self.node_load.add(-1)
        self.report_cancelled(entry.spec, tell_head=entry.spec.via_head)

    def is_cancelled(self, task_id):
        return task_id in self.cancelled

    def report_cancelled(self, spec, tell_head=False):
        """Answer a cancelled task: its results are TaskCancelledError (to the owner), and
        the head frees its slot if ``tell_head``."""
        self.report_failed(spec, serialization.cancelled(spec.task_id))
        if tell_head and spec.owner != 0:
            self.transport.send(0, messages.done(spec.task_id, None))

    def report_failed(self, spec, error):
        """Answer a task that will not run: each of its results is ``error`` (an Error
        record), sent to its owner."""
        self.send_results(spec, [(object_id, error) for object_id in spec.return_ids()],
                          None, None)

    def schedule(self, work):
        """Queue a callable for the serving threads (actor work)."""
        self.work.append(work)

    # ------------------------------------------------------------------ results
    def finish(self, spec, results, seconds, contained=None):
        """A task ran: send its results, release its slot.

        ``contained``: ``{object id: [ids of refs its pickle holds]}``; this rank holds them
        until the owner has taken them over (``HANDOFF``)."""
        self.node_load.add(-1)
        if self.progress.stopping:
            return                             # the job is over: nobody takes results
        self.send_results(spec, results, seconds, contained)
        if spec.via_head and spec.owner != 0:
            self.transport.send(0, messages.done(spec.task_id, seconds))
        if not self.ready:
            self.transport.flush()             # nothing queued behind it: answer right away

    def release(self, spec):
        """A task that will not finish here (its worker process died): free its slot, here
        and at the head; its owner decides what happens to it."""
        self.node_load.add(-1)
        if spec.via_head and not self.progress.stopping:
            # (even for the head's own tasks: no RESULT will free the slot the head's
            # scheduler gave it, and the task may be placed again)
            self.transport.send(0, messages.done(spec.task_id, None))

    def send_metrics(self):
        """What this process (and its worker processes) recorded since it last said goes to
        the head (lock held). Also a turn hook, the last one of each turn (``launch/join``)."""
        taken = metrics.recorder.take() if metrics.recorder.pending else None
        if taken is not None:
            self.transport.send(0, messages.metrics(taken))

    def emit_item(self, spec, index, obj, contained):
        """A generator task running here yielded item ``index``: to its owner now (lock not
        held); with back-pressure, wait until the caller took enough. Returns False if the
        task was cancelled meanwhile (it stops there)."""
        task_id = spec.task_id
        with self.lock:
            if task_id in self.cancelled:
                self.cancelled.discard(task_id)
                return False
            self.send_item(spec, index, obj, contained)
            self.transport.flush()
        if type(spec.stream) is int:
            self.wait_consumed(spec, index + 2 - spec.stream)
        return True

    def wait_consumed(self, spec, needed, in_worker_process=False):
        """Back-pressure: wait (lock not held) until the caller of a generator task (or
        call) running here took ``needed`` items, or it was cancelled (or, in a worker
        process, ended: its process died)."""
        task_id = spec.task_id
        consumed, cancelled, runner = self.consumed, self.cancelled, self.runner
        self.waiter.wait_until(lambda: consumed.get(task_id, 0) >= needed
                               or task_id in cancelled
                               or (in_worker_process and not runner.runs(spec)))

    def on_consumed(self, task_id, consumed):
        """GEN_CONSUMED: the caller took ``consumed`` items of a generator task running
        here."""
        if consumed > self.consumed.get(task_id, 0):
            self.consumed[task_id] = consumed
            self.waiter.notify()

    def send_item(self, spec, index, obj, contained):
        """Hand item ``index`` of a generator task to its owner (lock held); ``contained``:
        the ids of the refs its pickle holds, kept here until the owner took them over."""
        if contained:
            self.refs.result_held((spec.task_id, index), contained)
        if spec.owner == self.rank:
            self.ownership.on_item(spec.task_id, index, tuple(obj), self.rank, contained)
        else:
            self.transport.send(spec.owner, messages.gen_item(spec.task_id, index, obj,
                                                              self.rank, contained))

    def send_results(self, spec, results, seconds, contained):
        """Hand results to the owner of ``spec`` (the metrics recorded meanwhile go to the
        head first, so that they are in its table once the results are back; so does what
        was printed, so that the driver shows it before ``get`` returns)."""
        if metrics.recorder.pending:
            self.send_metrics()
        if output.buffer.pending or output.buffer.held:    # what it printed, ahead of
            output.forward_now()                           # its results
        self.events.ended(spec, results)
        if self.consumed:                      # (a generator's back-pressure is over)
            self.consumed.pop(spec.task_id, None)
        if contained:
            self.refs.result_held(spec.task_id, [i for ids in contained.values() for i in ids])
        if spec.owner == self.rank:
            self.ownership.deliver(spec.task_id, results, seconds, self.rank, contained)
        else:
            self.transport.send(spec.owner, messages.result(spec.task_id, results, seconds,
                                                            self.rank, contained))

    # ------------------------------------------------------------------ running (no lock)
    def run_task(self, spec, deps, stack=None):
        """Run one task on the calling thread and hand its results on (lock not held);
        ``stack``: this thread's task stack (``current.task_stack()``), if the caller has it."""
        if stack is None:
            stack = current.task_stack()
        progress = self.progress
        with self.lock:
            progress.user_code += 1            # (progress.enter_user_code, inlined: hot)
            self.events.began(spec)
        stack.append(spec)
        started = time.perf_counter()
        results = contained = None
        try:
            results, contained = invoke.execute(self, spec, deps)
        finally:
            stack.pop()
            seconds = time.perf_counter() - started
            with self.lock:
                progress.user_code -= 1
                if results is None:            # a fault of ours, not of the task
                    results = invoke.failed(self, spec, RuntimeError(
                        "the task ended abnormally in hpcray"))
                self.finish(spec, results, seconds, contained)

    # what invoke.py needs of the executor
    def where(self):
        return self.job.where()

    def await_borrows(self, ids):
        self.access.await_borrows(ids)

    # ------------------------------------------------------------------ serving (no lock)
    def serve(self, helper=False):
        """Execute the work that arrives until the job ends (lock not held by the caller).

        A fault here breaks the runtime (``progress.fail``) instead of ending the thread:
        the rank then only answers messages, so that the job can still end."""
        lock, progress, transport = self.lock, self.progress, self.transport
        backoff = Backoff(self.config.spin_seconds, self.config.poll_max_sleep)
        current.set_serving()
        stack = current.task_stack()
        with lock:
            progress.polling_threads += 1
        try:
            while not progress.stopping:
                item = None
                with lock:
                    if helper and self.serving > 1:
                        self.serving -= 1
                        return
                    if progress.stopping:      # (checked under the lock: MPI may be closing)
                        break
                    try:
                        activity = progress.turn()
                    except Exception as error:
                        progress.fail(f"a turn of the serving loop raised "
                                      f"{type(error).__name__}: {error}", error)
                        activity = 0
                    if progress.stopping:
                        # The job is over (SHUTDOWN was just handled): start nothing more.
                        # Work that arrived but has not started is dropped, as Ray drops a
                        # finished job's queued tasks (starting it made the job wait for it,
                        # or hang when it then waited for an owner that no longer answers).
                        break
                    if progress.broken is None:
                        if self.work:          # actor work first: calls are latency-bound
                            item = self.work.popleft()
                            progress.polling_threads -= 1
                        elif self.ready:
                            runner = self.runner
                            if runner is None:
                                item = self.ready.popleft()
                                progress.polling_threads -= 1
                            else:              # to worker processes, as room allows
                                ready = self.ready
                                moved = 0
                                while ready and runner.has_room(ready[0].spec):
                                    entry = ready.popleft()
                                    runner.start(entry.spec, entry.deps)
                                    moved += 1
                                while ready and runner.ahead(ready[0].spec, ready[0].deps):
                                    ready.popleft()        # (short tasks, streamed)
                                    moved += 1
                                runner.flush()
                                activity += moved
                                if ready:
                                    self._held_up(runner, moved)
                    # Results of a burst of short tasks run here leave together, unless they
                    # pile up. (Worker processes' results leave at once: tasks still ready
                    # wait for room, maybe behind a long task, and must not hold them.)
                    if (self.runner is not None or not (self.ready or self.work)
                            or transport.queued >= 64):
                        transport.flush()
                if item is not None:
                    try:
                        if callable(item):
                            item()
                        else:
                            self.run_task(item.spec, item.deps, stack)
                    except Exception as error:
                        with lock:
                            progress.fail(f"serving a task raised {type(error).__name__}: "
                                          f"{error}", error)
                    finally:
                        with lock:
                            progress.polling_threads += 1
                    backoff.reset()
                elif activity:
                    backoff.reset()
                elif self.runner is not None and self.runner.running:
                    # Only worker processes are busy: sleep until one answers, leaving them
                    # the CPU (MPI messages wait at most this long, as in backoff's sleeps).
                    self.runner.wait(WORKERS_WAIT)
                else:
                    backoff.pause()
        finally:
            with lock:
                progress.polling_threads -= 1

    def _held_up(self, runner, moved):
        """Tasks are ready and the worker processes have no room. Once nothing has started
        for a while (``GIVE_BACK_SECONDS``, or ten times as long as tasks last here), the
        tasks the head placed here go back to it, to run elsewhere (a long task holds
        this rank up; the head sends it no more until one of its tasks is done)."""
        now = time.monotonic()
        if moved or self.held_since is None:
            self.held_since = now
            return
        if (now - self.held_since < max(GIVE_BACK_SECONDS, 10 * runner.mean_seconds)
                or len(self.job.executors) < 2):
            return
        self.held_since = now
        back = [entry for entry in self.ready if entry.spec.via_head]
        if not back:
            return
        for entry in back:
            self.ready.remove(entry)
        self.node_load.add(-len(back))
        self.transport.send(0, messages.give_back(self.rank, [entry.spec for entry in back]))

    def start_serving_thread(self):
        """Serve on a thread of its own (the head, when it is the job's only rank)."""
        threading.Thread(target=self.serve, name="hpcray-executor", daemon=True).start()

    # ------------------------------------------------------------------ lending (lock held)
    def lend(self, spec):
        """The task ``spec`` running on this thread waits: lend its slot to other work.
        Returns whether this thread stopped serving meanwhile (see :meth:`reclaim`)."""
        self._note_blocked(spec, True)
        if self.runner is not None and self.runner.runs(spec):
            self.runner.set_blocked(spec, True)    # it waits in its worker process: its
            return False                           # resources are lent, no thread here
        if not current.is_serving():
            return False                       # a threaded actor's thread: just sleeps
        self.serving -= 1
        if self.serving == 0:
            self.serving += 1
            threading.Thread(target=self.serve, args=(True,), name="hpcray-executor",
                             daemon=True).start()
        return True

    def reclaim(self, spec, lent):
        """The waiting task runs again."""
        if lent:
            self.serving += 1
        if self.runner is not None and self.runner.runs(spec):
            self.runner.set_blocked(spec, False)
        self._note_blocked(spec, False)

    def _note_blocked(self, spec, blocked):
        if spec.actor_id is not None:          # actor calls are not counted as load
            return
        self.node_load.add(-1 if blocked else +1)
        if spec.via_head:
            self.transport.send(0, messages.blocked(spec.task_id) if blocked
                                else messages.unblocked(spec.task_id))

    # ------------------------------------------------------------------ dead ranks
    def on_rank_dead(self, rank, tasks):
        """``rank`` died: the tasks it owns that have not started here are dropped (nobody
        takes their results)."""
        orphans = [entry for entry in list(self.waiting.values()) + list(self.ready)
                   if entry.spec.owner == rank]
        for entry in orphans:
            spec = entry.spec
            if self.waiting.get(spec.task_id) is entry:
                del self.waiting[spec.task_id]
            else:
                self.ready.remove(entry)
            self.node_load.add(-1)
            if spec.via_head:                  # the head frees the slot it counted
                self.transport.send(0, messages.done(spec.task_id, None))

    # ------------------------------------------------------------------ sessions
    def forget(self):
        """A new session: drop the old session's tasks (their slots are freed)."""
        self.node_load.add(-(len(self.waiting) + len(self.ready)))
        self.waiting.clear()
        self.ready.clear()
        self.work.clear()
