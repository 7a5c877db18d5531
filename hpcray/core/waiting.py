"""Waiting: how a thread waits until something it needs has arrived.

Two ways, chosen by what the thread is doing:

* a thread running a task (or an actor call) *sleeps*: it lends its rank's execution slot to
  other work for as long as it waits (``Execution.lend``: a helper thread takes over serving,
  so nested tasks deeper than the number of ranks cannot deadlock), and is woken by whoever
  delivers what it waits for (:meth:`Waiting.notify`), each sleeper on its own event, so
  hundreds of blocked tasks cause no thundering herd;
* any other thread (the driver's script) *polls*: it drives the rank's progress itself, hot
  for a moment after activity, then backing off to sleeps (``transport.Backoff``).

Either way a wait ends when ``done()`` holds, when the deadline passes, or when the runtime
is broken or the job is over (then with RuntimeBrokenError): it never waits on nothing.
"""
import threading
import time

from ..wire.transport import Backoff
from . import current, output


class Sleeper:
    """A task waiting in ``get``: what it waits for, and the event that wakes it."""
    __slots__ = ("done", "event")

    def __init__(self, done):
        self.done = done
        self.event = threading.Event()


class Waiting:
    """Collaborators: the runtime ``lock``, ``progress`` (one turn of the message loop, the
    broken state) and, once the executing role exists, a ``lender`` with ``lend(spec)`` /
    ``reclaim(spec, lent)`` (``Execution``)."""

    def __init__(self, lock, progress, config):
        self.lock = lock
        self.progress = progress
        self.config = config
        self.lender = None
        self.sleepers = []
        self.arrivals = 0                      # objects delivered so far (lets waits skip
        #                                        re-checking when nothing arrived)

    def notify(self):
        """Something arrived (an object, an acknowledgement): wake the sleepers it completes
        (lock held)."""
        self.arrivals += 1
        if self.sleepers:
            for sleeper in self.sleepers:
                if not sleeper.event.is_set() and sleeper.done():
                    sleeper.event.set()

    def wake_all(self):
        """Wake every sleeper (the runtime broke: each raises)."""
        for sleeper in self.sleepers:
            sleeper.event.set()

    def wait_until(self, done, deadline=None, report=None):
        """Wait until ``done()`` (checked under the lock) or ``deadline`` (monotonic); return
        whether ``done()`` held. ``report``: ``(what, total, ready)`` for the driver's
        progress line once the wait lasts (``output.WaitProgress``; ``ready()`` counts under
        the lock).

        Raises:
            RuntimeBrokenError: the runtime broke meanwhile (it names rank, host and cause).
        """
        spec = current.current_task()
        if spec is not None and self.lender is not None:
            return self._sleep_until(spec, done, deadline)
        return self._poll_until(done, deadline, report if self.config.progress else None)

    def _poll_until(self, done, deadline, report=None):
        progress = self.progress
        backoff = Backoff(self.config.spin_seconds, self.config.poll_max_sleep)
        shown = None                           # the progress line, once it shows
        report_at = None                       # when to show it (next)
        with self.lock:
            progress.polling_threads += 1
        try:
            while True:
                with self.lock:
                    if progress.broken is not None or progress.stopping:
                        if progress.stopping and done():
                            return True
                        progress.check_running()
                    activity = progress.turn()
                    progress.flush()
                    if done():
                        return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                if report is not None:         # (a wait that lasts: only in the loop)
                    now = time.monotonic()
                    if report_at is None:
                        report_at, started = now + output.WAIT_AFTER, now
                    elif now >= report_at:
                        with self.lock:
                            ready = report[2]()
                        if shown is None:
                            shown = output.WaitProgress(report[0], report[1], started)
                        report_at = shown.show(ready, now)
                if activity:
                    backoff.reset()
                else:
                    backoff.pause()
        finally:
            with self.lock:
                progress.polling_threads -= 1
                ready = report[2]() if shown is not None else None
            if shown is not None:
                shown.end(ready, time.monotonic())

    def _sleep_until(self, spec, done, deadline):
        with self.lock:
            if self.progress.stopping and done():
                return True
            self.progress.check_running()
            self.progress.turn()
            if done():
                return True
            sleeper = Sleeper(done)
            self.sleepers.append(sleeper)
            lent = self.lender.lend(spec)
            self.progress.flush()
        try:
            while True:
                timeout = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if timeout > 0:
                    sleeper.event.wait(timeout)
                with self.lock:
                    if done():
                        return True
                    self.progress.check_running()
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    sleeper.event.clear()
        finally:
            with self.lock:
                self.sleepers.remove(sleeper)
                self.lender.reclaim(spec, lent)
