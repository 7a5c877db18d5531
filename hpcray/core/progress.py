"""The progress loop of one rank: dispatching messages, one turn of work, the background
thread, and the broken state.

One *turn* (:meth:`Progress.turn`, lock held) applies the ref counts ``ObjectRef``s queued,
advances copies between nodes, unpins store views that died, receives messages and hands
each to its handler, and runs the per-turn hooks (the head places queued tasks there). Every
waiting loop of the rank calls it; so does the background thread, while every other thread of
the rank is busy in user code (the driver's script, a long task).

Dispatch is built from ``wire/messages.TABLE``: each role registers itself under its name and
each kind's handler is ``getattr(role, method)``. The session filter runs here, once per
envelope: a scoped message of an older session is dropped, one of a newer session is kept
until this rank's own ``RESET`` (:meth:`set_session`). Once the job is over (``stopping``:
a worker got ``SHUTDOWN``) every scoped message is dropped: no work starts any more.

**One broken path.** A handler that raises, a failure of a serving loop or of the background
thread, on any rank and under every launcher, calls :meth:`fail`: the runtime is *broken* for
good. Every wait of the rank ends with RuntimeBrokenError naming the rank, host and cause;
the other ranks learn it by ``BROKEN`` and break the same way; later calls fail fast. The
rest of a batch whose handler raised is still handled, and the rank keeps answering the job's
lifecycle messages, so the job can still end cleanly.
"""
import os
import sys
import threading
import time
import traceback

from ..exceptions import RuntimeBrokenError
from ..wire import messages

FUTURE_POLL = 0.0002      # seconds between polls of the background thread while futures wait


class Progress:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``transport``, ``config``,
    ``refs`` (its queued counts are applied each turn), this node's ``store`` and the
    ``copies`` between nodes (advanced each turn while busy). ``parent_pid``: the launcher's
    pid to watch (None: do not)."""

    def __init__(self, lock, job, transport, config, refs, store, copies, parent_pid=None):
        self.lock = lock
        self.job = job
        self.transport = transport
        self.config = config
        self.refs = refs
        self.store = store
        self.copies = copies
        self.parent_pid = parent_pid
        self.session = 0
        self.handlers = [None] * (max(messages.BY_CODE) + 1)
        self.scoped = [False] * len(self.handlers)
        for kind in messages.TABLE:
            self.scoped[kind.code] = kind.scoped
        self.newer = []                        # (session, message) kept until our RESET
        self.turn_hooks = []
        self.background_hooks = []             # fn() each turn of the background thread
        #                                        (lock not held): liveness checks
        self.broken = None                     # the reason, once broken
        self.broken_listeners = []
        self.stopping = False
        self.polling_threads = 0               # threads polling in a loop right now
        self.user_code = 0                     # threads running user code (the script, tasks)
        self.last_api_call = 0.0               # when user code last submitted here
        self.futures_pending = 0               # futures of refs not completed yet
        self._background = None
        self.register("progress", self)        # BROKEN

    # ------------------------------------------------------------------ dispatch
    def register(self, role, obj):
        """Route to ``obj`` every kind whose handler is ``role.<method>``."""
        for kind in messages.TABLE:
            name, _, method = kind.handler.partition(".")
            if name == role:
                self.handlers[kind.code] = getattr(obj, method)

    def deliver(self, session, payload):
        """An envelope from the transport: handle its message(s) (lock held)."""
        if type(payload) is list:
            for message in payload:
                self._handle(session, message)
        else:
            self._handle(session, payload)

    def _handle(self, session, message):
        try:
            kind = message[0]
            if self.scoped[kind] and (session != self.session or self.stopping):
                if session > self.session and not self.stopping:  # our RESET is to come
                    self.newer.append((session, message))
                return                         # an older session's, or the job is over
            handler = self.handlers[kind]
            if handler is None:
                raise RuntimeError(f"rank {self.job.rank} has no handler for this kind")
            handler(*message[1:])
        except Exception as error:
            kind = messages.BY_CODE.get(message[0] if message else None)
            self.fail(f"handling {kind.name if kind else repr(message)[:80]} raised "
                      f"{type(error).__name__}: {error}", error)

    def set_session(self, session):
        """This rank enters ``session``: messages of older ones are stale from now on, and
        those of this one that arrived early are handled now."""
        self.transport.set_session(session)
        self.session = session
        newer, self.newer = self.newer, []
        for message_session, message in newer:
            self._handle(message_session, message)

    def enter_user_code(self):
        """A thread of this rank starts running user code (lock held): while every thread is
        busy there, the background thread keeps the rank answering."""
        self.user_code += 1

    def leave_user_code(self):
        self.user_code -= 1

    # ------------------------------------------------------------------ one turn
    def turn(self):
        """Handle what has arrived (lock held); return how many messages (and moving
        transfers) there were."""
        if self.refs.events:
            self.refs.process_events()
        # Large messages move in pieces that need both ends inside MPI: while a transfer is
        # in flight it counts as activity, so that the waiting loops keep polling hot.
        copies = self.copies
        transfers = copies.progress() if copies.busy() else 0
        store = self.store
        if store is not None and store.released:
            store.settle()                     # views that died since: unpin their runs
        handled = self.transport.poll(self.deliver) + transfers
        for hook in self.turn_hooks:
            handled += hook() or 0
        return handled

    def flush(self):
        """Send what the turn queued."""
        self.transport.flush()

    # ------------------------------------------------------------------ broken
    def check(self):
        """Raise RuntimeBrokenError if the runtime is broken (lock held or not)."""
        if self.broken is not None:
            raise RuntimeBrokenError(self.broken)

    def check_running(self):
        """Raise RuntimeBrokenError if the runtime is broken or the job is over: then a wait
        can never be satisfied (no thread polls MPI any more, and the head no longer
        answers). Called before any MPI call: MPI may be finalizing."""
        self.check()
        if self.stopping:
            raise RuntimeBrokenError(f"the job is ending (rank {self.job.rank}): what this "
                                     f"wait needs will not arrive")

    def fail(self, cause, error=None):
        """An internal fault on this rank: break the runtime here and on every rank."""
        if self.broken is not None:
            return
        job = self.job
        detail = ""
        if error is not None:
            detail = "".join(traceback.format_exception(type(error), error,
                                                        error.__traceback__))
        sys.stderr.write(f"hpcray: internal fault on rank {job.rank} (host {job.host}): "
                         f"{cause}\n{detail}")
        sys.stderr.flush()
        self._break(job.rank, job.host, cause)
        for rank in range(job.size):
            if rank != job.rank:
                self.transport.send(rank, messages.broken(job.rank, job.host, cause))
        self.transport.flush()

    def on_broken(self, rank, host, cause):
        """BROKEN: another rank broke."""
        self._break(rank, host, cause)

    def _break(self, rank, host, cause):
        if self.broken is not None:
            return
        self.broken = (f"the hpcray runtime is broken: an internal fault on rank {rank} "
                       f"(host {host}): {cause}")
        for listener in self.broken_listeners:
            listener(self.broken)

    # ------------------------------------------------------------------ background thread
    def start_background(self):
        self._background = threading.Thread(target=self._background_loop,
                                             name="hpcray-progress", daemon=True)
        self._background.start()

    def stop_background(self):
        self.stopping = True
        if self._background is not None and self._background is not threading.current_thread():
            self._background.join(timeout=1.0)

    def _background_loop(self):
        """Serve messages while every thread of this rank is busy in user code."""
        interval = self.config.background_poll
        next_check = 0.0
        # Plain sleeps, not Event waits: this loop turns every millisecond, and a wait made of
        # Python frames churning that fast can crash faulthandler's all-thread stack dump
        # (kill -USR1), the first tool for a job that hangs.
        while not self.stopping:
            try:
                if self.parent_pid is not None and time.monotonic() > next_check:
                    next_check = time.monotonic() + 0.5
                    self._check_launcher()
                for hook in self.background_hooks:
                    hook()
                if self.futures_pending and not self.polling_threads:
                    # Someone waits on a Future (``ref.future()``, ``await ref``) and no
                    # thread of the rank polls: poll often until it completes.
                    time.sleep(FUTURE_POLL)
                else:
                    # Polling matters only while user code holds every other thread.
                    time.sleep(interval if self.user_code else 0.02)
                    if not self.user_code or self.polling_threads or self.stopping:
                        continue
                    if time.monotonic() - self.last_api_call < interval:
                        continue               # the caller is calling in: it polls itself
                with self.lock:
                    if not self.stopping:
                        self.turn()
                        self.transport.flush()
            except Exception as error:         # a bug here must not leave the job hanging
                with self.lock:
                    self.fail(f"the progress thread raised {type(error).__name__}: {error}",
                              error)
                time.sleep(0.01)

    def _check_launcher(self):
        """A rank whose launcher (mpiexec's proxy, slurmstepd) died is orphaned: leave."""
        if os.getppid() != self.parent_pid:
            sys.stderr.write(f"hpcray: rank {self.job.rank}: the launcher process is gone; "
                             f"exiting\n")
            sys.stderr.flush()
            os._exit(1)
