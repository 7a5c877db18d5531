"""``Pool``: ``multiprocessing.Pool`` on hpcray tasks (or actors), as ``ray.util.multiprocessing``.

Change ``from multiprocessing import Pool`` to ``from hpcray.util.multiprocessing import
Pool``; the calls run on the job's ranks instead of local processes. Work travels in chunks
(``map`` over 10,000 items makes about ``4 x processes`` chunks, as the standard library
does), each chunk one task, or one call of a pool worker actor::

    map/imap/apply_async --> chunks --> _run_items.remote(func, chunk, mode)      (tasks)
                                  `---> worker.run.remote(func, chunk, mode)      (actors:
                                        the least busy of `processes` actors that each ran
                                        `initializer(*initargs)`; replaced after
                                        `maxtasksperchild` chunks)
    each chunk's ObjectRef.future() done --(note)--> the pool's result thread:
        store the chunk's values in its AsyncResult / iterator, run callbacks, wake waiters

Without ``initializer`` or ``maxtasksperchild`` the chunks are plain tasks, placed by the
scheduler over all the job's ranks (``processes`` then only sizes the chunks). With them, the
pool's workers are ``processes`` actors; an initializer that sets module globals from the
driver script (``global G; G = ...``) is seen by the functions the pool runs, as it would be
in a worker process.
"""
import builtins
import multiprocessing as _stdlib_mp
import queue
import sys
import threading
import time
import types
from collections import deque

from .. import api

__all__ = ["Pool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
           "IMapUnorderedIterator", "TimeoutError"]

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"
_MAP, _STAR, _APPLY = 0, 1, 2


class TimeoutError(_stdlib_mp.TimeoutError, builtins.TimeoutError):
    """A result was not ready in time: a ``multiprocessing.TimeoutError`` and a builtin
    ``TimeoutError``."""


# ---------------------------------------------------------------------- the remote side
def _run_items(func, items, mode):
    """One chunk: the results of ``func`` over its items (``mode``: map, starmap, apply)."""
    if mode == _MAP:
        return [func(item) for item in items]
    if mode == _STAR:
        return [func(*args) for args in items]
    args, kwds = items
    return func(*args, **kwds)


_run_chunk = api.remote(_run_items)


def _dynamic_globals(function):
    """The globals of a function unpickled by value (from the driver script), else None."""
    if not isinstance(function, types.FunctionType):
        return None
    module = sys.modules.get(function.__module__)
    if module is not None and getattr(module, "__dict__", None) is function.__globals__:
        return None
    return function.__globals__


def _rebind(value, shared, module, memo):
    """``value`` (a function unpickled by value from ``module``, and the functions its globals
    name) re-created over the ``shared`` globals, so it sees what the initializer set."""
    if (not isinstance(value, types.FunctionType) or value.__module__ != module
            or value.__globals__ is shared or _dynamic_globals(value) is None):
        return value
    done = memo.get(id(value))
    if done is not None:
        return done
    rebound = types.FunctionType(value.__code__, shared, value.__name__, value.__defaults__,
                                 value.__closure__)
    memo[id(value)] = rebound
    rebound.__kwdefaults__ = value.__kwdefaults__
    rebound.__qualname__ = value.__qualname__
    rebound.__dict__.update(value.__dict__)
    for name, item in value.__globals__.items():
        if name not in shared:
            shared[name] = _rebind(item, shared, module, memo)
    return rebound


class _PoolWorkerImpl:
    """A pool worker: an actor that ran the pool's initializer and then runs chunks."""

    def __init__(self, initializer, initargs):
        self._shared = self._module = None
        if initializer is not None:
            initializer(*initargs)
            self._shared = _dynamic_globals(initializer)
            self._module = getattr(initializer, "__module__", None)

    def run(self, func, items, mode):
        if self._shared is not None:
            func = _rebind(func, self._shared, self._module, {})
        return _run_items(func, items, mode)


_PoolWorker = api.remote(_PoolWorkerImpl)


# ---------------------------------------------------------------------- results
def _wait_refs(refs, num_returns, timeout):
    """Wait for ``refs`` as ``hpcray.get`` does before a thread waits for the result thread:
    the waiter takes in results itself, and inside a task lends its rank to other work (a
    task using a pool cannot starve the chunks it waits for). Return the timeout left."""
    if timeout is not None:
        timeout = max(0.0, timeout)
    if not refs:
        return timeout
    start = time.monotonic()
    api.wait(refs, num_returns=min(num_returns, len(refs)), timeout=timeout)
    return None if timeout is None else max(0.0, timeout - (time.monotonic() - start))


class ApplyResult:
    """The result of ``apply_async``/``map_async``: ``get``, ``wait``, ``ready``, ``successful``."""

    def __init__(self, pool, callback=None, error_callback=None):
        self._pool = pool
        self._event = threading.Event()
        self._callback = callback
        self._error_callback = error_callback
        self._success = None
        self._value = None
        self._refs = []                    # chunk refs until done (to wait on)

    def ready(self):
        """Whether the call has completed."""
        return self._event.is_set()

    def successful(self):
        """Whether the call completed without raising. ValueError if it is not ready."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._success

    def wait(self, timeout=None):
        """Wait until the result is available or ``timeout`` seconds pass."""
        if not self.ready():
            refs = list(self._refs)
            timeout = _wait_refs(refs, len(refs), timeout)
        self._event.wait(timeout)

    def get(self, timeout=None):
        """Return the result when it arrives; raise the call's exception if it failed.

        Raises:
            TimeoutError: (``multiprocessing.TimeoutError``) not ready within ``timeout``.
        """
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError("the result was not ready in time")
        if self._success:
            return self._value
        raise self._value

    def _chunk_done(self, index, ok, value):
        self._refs = []
        self._finish(ok, value)

    def _finish(self, ok, value):
        self._success, self._value = ok, value
        callback = self._callback if ok else self._error_callback
        if callback is not None:
            _call_back(callback, value)
        self._event.set()


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """The result of ``map_async``/``starmap_async``: one list, in the order of the input."""

    def __init__(self, pool, chunks, callback=None, error_callback=None):
        super().__init__(pool, callback, error_callback)
        self._chunks = [None] * chunks
        self._left = chunks
        if chunks == 0:                    # as the standard library: ready, no callback
            self._success, self._value = True, []
            self._event.set()

    def _chunk_done(self, index, ok, value):
        if self.ready():                   # an earlier chunk failed: the result is set
            return
        if not ok:
            self._refs = []
            self._finish(False, value)
            return
        self._chunks[index] = value
        self._left -= 1
        if self._left == 0:
            self._refs = []
            self._finish(True, [item for chunk in self._chunks for item in chunk])


class IMapIterator:
    """The iterator of ``imap``: results in the order of the input, as they arrive;
    ``next(timeout)`` raises TimeoutError when the next one takes longer."""

    _ordered = True

    def __init__(self, pool, chunks):
        self._pool = pool
        self._cond = threading.Condition()
        self._done = {}                    # chunk index -> (ok, values or error)
        self._arrived = deque()            # unordered: chunk indices in arrival order
        self._refs = {}                    # chunk index -> ref, until done (to wait on)
        self._chunks = chunks
        self._next_chunk = 0
        self._items = deque()              # values of the chunk being yielded

    def __iter__(self):
        return self

    def _chunk_done(self, index, ok, value):
        with self._cond:
            self._refs.pop(index, None)
            self._done[index] = (ok, value)
            self._arrived.append(index)
            self._cond.notify_all()

    def _take(self):
        """The index of the chunk to yield next, if it arrived (condition held)."""
        if self._ordered:
            return self._next_chunk if self._next_chunk in self._done else None
        return self._arrived[0] if self._arrived else None

    def next(self, timeout=None):
        """The next result; raise the call's exception if it failed.

        Raises:
            StopIteration: every result was returned.
            TimeoutError: (``multiprocessing.TimeoutError``) not ready within ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._items:
                    return self._items.popleft()
                if self._next_chunk >= self._chunks:
                    raise StopIteration
                index = self._take()
                if index is not None:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("the next result was not ready in time")
                if self._ordered:
                    refs = [self._refs[self._next_chunk]] if self._next_chunk in self._refs \
                        else []
                else:                      # the oldest few: any one may come first
                    refs = [ref for _, ref in zip(range(32), self._refs.values())]
                if refs:
                    self._cond.release()
                    try:
                        _wait_refs(refs, 1, 0.05 if remaining is None else min(remaining, 0.05))
                    finally:
                        self._cond.acquire()
                    if self._take() is None:
                        self._cond.wait(0.002)
                else:
                    self._cond.wait(remaining)
            ok, value = self._done.pop(index)
            if not self._ordered:
                self._arrived.popleft()
            self._next_chunk += 1
            if not ok:
                raise value
            self._items.extend(value)      # a chunk is never empty
            return self._items.popleft()

    __next__ = next


class IMapUnorderedIterator(IMapIterator):
    """The iterator of ``imap_unordered``: results in the order they arrive (by chunk)."""

    _ordered = False


def _call_back(callback, value):
    try:
        callback(value)
    except Exception:                      # as the standard library: report, go on
        import traceback
        traceback.print_exc()


# ---------------------------------------------------------------------- the pool
class Pool:
    """A pool of workers on the job's ranks, with ``multiprocessing.Pool``'s interface.

    Args:
        processes: the number of workers; by default the job's logical CPUs
            (``hpcray.cluster_resources()["CPU"]``). It sizes ``map``'s chunks, and is the
            number of worker actors when there are actors.
        initializer, initargs: each worker runs ``initializer(*initargs)`` first (the workers
            are then actors).
        maxtasksperchild: a worker actor is replaced by a fresh one after this many chunks.
        context: accepted for compatibility, unused.
        ray_remote_args: options for the tasks or worker actors (``num_cpus``, ...).

    As with the standard library: ``map``/``starmap`` return lists, ``imap``/
    ``imap_unordered`` iterators, the ``*_async`` methods an :class:`AsyncResult`; errors of
    ``func`` are raised by ``get`` (instances of their original class); ``close``, then
    ``join``, waits for the work; ``terminate`` (and leaving a ``with`` block) cancels what has
    not started.
    """

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 context=None, ray_remote_args=None):
        if processes is None:
            processes = max(1, int(api.cluster_resources().get("CPU", 1)))
        if not isinstance(processes, int) or processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int)
                                             or maxtasksperchild <= 0):
            raise ValueError("maxtasksperchild must be a positive int or None")
        self._processes = processes
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._maxtasksperchild = maxtasksperchild
        self._remote_args = dict(ray_remote_args or {})
        self._cond = threading.Condition()
        self._outstanding = {}             # ref -> (result, chunk index, worker or None)
        self._notes = queue.SimpleQueue()  # (ref, its future): chunks that finished
        self._thread = None
        self._state = RUN
        self._workers = None
        if initializer is not None or maxtasksperchild is not None:
            self._workers = [self._new_worker() for _ in range(processes)]
            self._task = None
        else:
            self._task = _run_chunk.options(**self._remote_args) if self._remote_args \
                else _run_chunk

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def __repr__(self):
        return f"<{type(self).__name__} state={self._state} processes={self._processes}>"

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()

    # ------------------------------------------------------------------ workers
    def _new_worker(self):
        actor_class = _PoolWorker.options(**self._remote_args) if self._remote_args \
            else _PoolWorker
        return [actor_class.remote(self._initializer, self._initargs), 0, 0]  # handle, chunks, busy

    def _send(self, func, items, mode):
        """Submit one chunk (condition held); return (ref, worker slot or None)."""
        if self._workers is None:
            return self._task.remote(func, items, mode), None
        slot = min(range(len(self._workers)), key=lambda i: self._workers[i][2])
        worker = self._workers[slot]
        ref = worker[0].run.remote(func, items, mode)
        worker[1] += 1
        worker[2] += 1
        if self._maxtasksperchild is not None and worker[1] >= self._maxtasksperchild:
            self._workers[slot] = self._new_worker()   # the old one ends after its calls
        return ref, worker

    def _submit(self, result, func, chunks, mode):
        with self._cond:
            self._check_running()
            for index, items in enumerate(chunks):
                ref, worker = self._send(func, items, mode)
                self._outstanding[ref] = (result, index, worker)
                if isinstance(result, IMapIterator):
                    result._refs[index] = ref
                else:
                    result._refs.append(ref)
                inner = ref.future()
                inner.add_done_callback(
                    lambda _, ref=ref, inner=inner: self._notes.put((ref, inner)))
            if self._outstanding and self._thread is None:
                self._thread = threading.Thread(target=self._result_loop, daemon=True,
                                                name="hpcray-pool-results")
                self._thread.start()
        return result

    def _result_loop(self):
        """The pool's result thread: hand finished chunks to their results (callbacks run
        here, as in the standard library); exit when nothing is outstanding."""
        while True:
            ref, inner = self._notes.get()
            with self._cond:
                entry = self._outstanding.get(ref)
            if entry is not None:
                result, index, worker = entry
                error = inner.exception()
                if error is None:
                    result._chunk_done(index, True, inner.result())
                else:
                    result._chunk_done(index, False, error)
                with self._cond:
                    del self._outstanding[ref]
                    if worker is not None:
                        worker[2] -= 1
            with self._cond:
                if not self._outstanding:
                    self._cond.notify_all()
                    self._thread = None
                    return

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    # ------------------------------------------------------------------ chunking
    def _chunks(self, iterable, chunksize):
        items = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * 4)
            if extra:
                chunksize += 1
        elif not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
        if not items:
            return []
        return [items[i:i + chunksize] for i in range(0, len(items), chunksize)]

    # ------------------------------------------------------------------ the interface
    def apply(self, func, args=(), kwds={}):
        """Call ``func(*args, **kwds)`` on a worker and return its result."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        """Call ``func(*args, **kwds)`` on a worker; return an :class:`AsyncResult`.
        ``callback(result)`` or ``error_callback(exception)`` runs when it completes."""
        self._check_running()
        result = ApplyResult(self, callback, error_callback)
        return self._submit(result, func, [(tuple(args), dict(kwds))], _APPLY)

    def map(self, func, iterable, chunksize=None):
        """``list(map(func, iterable))``, computed in chunks on the workers."""
        return self._map_async(func, iterable, chunksize, _MAP).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        """``map`` returning an :class:`AsyncResult` (whose value is the list)."""
        return self._map_async(func, iterable, chunksize, _MAP, callback, error_callback)

    def starmap(self, func, iterable, chunksize=None):
        """``[func(*args) for args in iterable]``, computed in chunks on the workers."""
        return self._map_async(func, iterable, chunksize, _STAR).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        """``starmap`` returning an :class:`AsyncResult`."""
        return self._map_async(func, iterable, chunksize, _STAR, callback, error_callback)

    def _map_async(self, func, iterable, chunksize, mode, callback=None, error_callback=None):
        self._check_running()
        chunks = self._chunks(iterable, chunksize)
        result = MapResult(self, len(chunks), callback, error_callback)
        return self._submit(result, func, chunks, mode)

    def imap(self, func, iterable, chunksize=1):
        """An iterator of ``func(item)`` in the order of ``iterable``, yielding each result
        as soon as it (and those before it) are ready. ``iterable`` is read at once."""
        self._check_running()
        chunks = self._chunks(iterable, chunksize)
        return self._submit(IMapIterator(self, len(chunks)), func, chunks, _MAP)

    def imap_unordered(self, func, iterable, chunksize=1):
        """Like :meth:`imap`, but results come in the order they are ready."""
        self._check_running()
        chunks = self._chunks(iterable, chunksize)
        return self._submit(IMapUnorderedIterator(self, len(chunks)), func, chunks, _MAP)

    # ------------------------------------------------------------------ end of the pool
    def close(self):
        """Accept no more work; the work submitted goes on (``join`` waits for it)."""
        with self._cond:
            if self._state == RUN:
                self._state = CLOSE

    def terminate(self):
        """Stop now: cancel the chunks that have not started and end the worker actors
        (their pending results raise TaskCancelledError or ActorDiedError)."""
        with self._cond:
            self._state = TERMINATE
            refs = list(self._outstanding)
            workers = self._workers
            if workers is not None:
                self._workers = []         # dropped: the actors end (and are killed below)
        for ref in refs:
            try:
                api.cancel(ref)
            except Exception:
                pass
        for worker in workers or ():
            try:
                api.kill(worker[0])
            except Exception:
                pass

    def join(self, timeout=None):
        """Wait for the submitted work to finish (after ``close`` or ``terminate``); then
        the worker actors end."""
        with self._cond:
            if self._state == RUN:
                raise ValueError("Pool is still running")
            refs = list(self._outstanding)
        timeout = _wait_refs(refs, len(refs), timeout)
        with self._cond:
            self._cond.wait_for(lambda: not self._outstanding, timeout)
            if not self._outstanding and self._workers:
                self._workers = []         # drop the handles: the actors end
