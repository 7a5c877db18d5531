"""``Executor``: the ``concurrent.futures`` interface over hpcray tasks.

A drop-in for ``ThreadPoolExecutor``/``ProcessPoolExecutor`` whose calls run as tasks on the
job's ranks. At most ``max_workers`` calls are in flight; the others wait here, pending (and
cancellable), in submission order::

    submit(fn, *args) -> Future (PENDING) --room?--> task ``_call.remote(fn, args, kwargs)``
                                                      Future RUNNING; ObjectRef.future()
    task done --(runtime thread: queue a note)--> executor thread: set the Future's result or
                                                  exception, run its callbacks, start the next

The executor's own thread completes the futures, so callbacks never run inside the runtime.
"""
import concurrent.futures
import queue
import threading
import time
from collections import deque

from .. import api

__all__ = ["Executor"]


def _call(fn, args, kwargs):
    return fn(*args, **kwargs)


_call_task = api.remote(_call)


class _Future(concurrent.futures.Future):
    """A Future whose ``result``/``exception`` wait for a running call as ``hpcray.get``
    does: the waiting thread takes in results itself (no wake-up by another thread), and
    inside a task it lends the task's rank to other work, so a task using an executor cannot
    starve the calls it waits for."""

    _hpcray_ref = None

    def _wait_ref(self, timeout):
        ref = self._hpcray_ref
        if ref is None or self.done():
            return timeout
        if timeout is not None:
            timeout = max(0.0, timeout)
        start = time.monotonic()
        api.wait([ref], timeout=timeout)
        return None if timeout is None else max(0.0, timeout - (time.monotonic() - start))

    def result(self, timeout=None):
        return super().result(self._wait_ref(timeout))

    def exception(self, timeout=None):
        return super().exception(self._wait_ref(timeout))


class _Running:
    __slots__ = ("future", "ref", "inner")

    def __init__(self, future, ref, inner):
        self.future = future               # the caller's Future
        self.ref = ref                     # the task's ObjectRef (kept alive until done)
        self.inner = inner                 # ref.future(), completed by the runtime


class Executor(concurrent.futures.Executor):
    """Run callables as hpcray tasks, returning ``concurrent.futures.Future`` objects.

    Args:
        max_workers: the most calls running at once; by default the job's logical CPUs
            (``hpcray.cluster_resources()["CPU"]``).

    ``submit``, ``map`` (with ``timeout``), ``shutdown(wait, cancel_futures)`` and the context
    manager behave as the standard library's executors: a call's exception is raised by
    ``Future.result()`` (an instance of the original class), a future still waiting for a
    worker can be cancelled, and ``submit`` after ``shutdown`` raises RuntimeError. Arguments
    are passed as given (ObjectRefs among them arrive as refs).
    """

    def __init__(self, max_workers=None):
        if max_workers is None:
            max_workers = max(1, int(api.cluster_resources().get("CPU", 1)))
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._waiting = deque()            # (future, fn, args, kwargs) not started yet
        self._running = {}                 # ObjectRef -> _Running
        self._notes = queue.SimpleQueue()  # ObjectRefs whose task finished; None: wake up
        self._thread = None
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs):
        """Schedule ``fn(*args, **kwargs)``; return a Future for its result."""
        future = _Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._thread is None:
                self._thread = threading.Thread(target=self._complete_loop, daemon=True,
                                                name="hpcray-executor-futures")
                self._thread.start()
            self._waiting.append((future, fn, args, kwargs))
            failed = self._start_waiting()
        _fail(failed)
        return future

    def _start_waiting(self):
        """Start waiting calls while fewer than max_workers run (lock held); return the
        ``(future, error)`` of calls that could not be submitted, to fail without the lock."""
        failed = []
        while self._waiting and len(self._running) < self._max_workers:
            future, fn, args, kwargs = self._waiting.popleft()
            if not future.set_running_or_notify_cancel():
                continue                   # cancelled while it waited
            try:
                ref = _call_task.remote(fn, args, kwargs)
                inner = ref.future()
            except BaseException as error:  # e.g. an argument that cannot be pickled
                failed.append((future, error))
                continue
            future._hpcray_ref = ref
            self._running[ref] = _Running(future, ref, inner)
            inner.add_done_callback(lambda _, ref=ref: self._notes.put(ref))
        return failed

    def _complete_loop(self):
        """The executor's thread, while calls are in flight: complete the futures whose tasks
        finished (their callbacks run here), start waiting calls."""
        while True:
            ref = self._notes.get()
            if ref is not None:
                with self._lock:
                    record = self._running.pop(ref, None)
                if record is not None:
                    record.future._hpcray_ref = None
                    error = record.inner.exception()
                    if error is None:
                        record.future.set_result(record.inner.result())
                    else:
                        record.future.set_exception(error)
            with self._lock:
                failed = self._start_waiting()
                idle = not self._running and not self._waiting
                if idle:                       # the next submit starts a new thread
                    self._thread = None
            _fail(failed)
            if idle:
                return

    def shutdown(self, wait=True, *, cancel_futures=False):
        """No more submissions; with ``cancel_futures``, cancel the calls not started yet;
        with ``wait``, return once every started (and remaining) call is done."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft()[0].cancel()
            thread = self._thread
        self._notes.put(None)
        if wait and thread is not None:
            thread.join()


def _fail(failed):
    for future, error in failed:
        future.set_exception(error)
