"""A rank's life in the job: sessions, the end of the job, leaving.

A *session* is what ``init()`` starts and ``shutdown()`` ends; under ``python -m hpcray`` the
job's ranks outlive sessions (the job is the cluster), so ``init()`` after ``shutdown()``
starts a new one: every rank forgets the old session's objects, tasks and actors
(:meth:`Lifecycle.new_session`), the head first, the workers on its ``RESET``.

At the end of the job the head sends ``SHUTDOWN``; each worker answers ``BYE`` and leaves.
The head's side of both (``RESET``/``SHUTDOWN`` to every worker, counting the ``BYE``s) is in
``head/service.py``.
"""
import os
import sys

from ..wire import messages


class Lifecycle:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``transport``, ``progress``,
    the roles that keep per-session state (``forgetful``: each has ``forget()``, called in
    order), this node's ``store``, ``node_load`` and ``copies`` (their MPI windows close at
    the end), and ``on_exit``, how this rank leaves the job when it must leave at once."""

    def __init__(self, lock, job, transport, progress, forgetful, store, node_load, copies,
                 on_exit=None):
        self.lock = lock
        self.job = job
        self.transport = transport
        self.progress = progress
        self.forgetful = forgetful
        self.store = store
        self.node_load = node_load
        self.copies = copies
        self.on_exit = on_exit
        self.closed = False
        self.at_close = []                     # fn() before the rank leaves (worker processes)
        self.before_bye = []                   # fn() called (lock held) before BYE: last words

    # ------------------------------------------------------------------ sessions
    def new_session(self, session, capacities=None):
        """Enter ``session`` (lock held): forget everything of the old one."""
        if capacities is not None:
            self.job.set_capacities(capacities)
        for role in self.forgetful:
            role.forget()
        self.progress.set_session(session)

    def on_reset(self, session, capacities):
        """RESET: the head started a new session."""
        self.new_session(session, capacities)

    # ------------------------------------------------------------------ the end
    def on_shutdown(self):
        """SHUTDOWN: the job is over."""
        self.progress.stopping = True
        self.transport.close_to_all_but(0)     # the others are leaving too
        if self.progress.user_code:
            # A task still runs on the main thread: the job is over, so end this rank now.
            self.leave(hard=True)

    def leave(self, hard=False):
        """Say goodbye to the head and leave the job (finalizing MPI when ``hard``)."""
        with self.lock:
            self.progress.stopping = True
            self.transport.close_to_all_but(0)
            for last_words in self.before_bye:
                last_words()
            self.transport.send(0, messages.bye(self.job.rank, os.getpid()))
            self.transport.drain(2.0)
        if hard and self.on_exit is not None:
            self.stop_helpers()
            sys.stdout.flush()
            sys.stderr.flush()
            self.close_windows()               # collective with the node's other ranks
            self.on_exit()

    def close(self):
        """Stop the background thread and free the windows (collective, same order on all)."""
        with self.lock:                        # no thread is inside a turn from now on
            self.progress.stopping = True
        self.progress.stop_background()
        self.stop_helpers()
        self.close_windows()

    def stop_helpers(self):
        """End what the rank started besides itself (its worker processes)."""
        at_close, self.at_close = self.at_close, []
        for stop in at_close:
            stop()

    def close_windows(self):
        """Free the MPI windows: collective over the job and the node. When a rank died they
        are left to the end of the process (a free with a dead member never returns);
        the store's files are removed all the same."""
        if self.closed:
            return
        self.closed = True
        if self.transport.dead:
            if self.store is not None:
                self.store.abandon()
            return
        self.copies.close_window()
        if self.store is not None:
            self.store.close()
        self.node_load.close()
