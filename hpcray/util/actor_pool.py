"""``ActorPool``: spread work over a fixed set of actors, as Ray's ``ray.util.ActorPool``.

Each value goes to an idle actor through ``fn(actor, value)``, which must return the
ObjectRef of one call (``lambda a, v: a.method.remote(v)``); an actor counts as busy until
the result of that call has been taken with ``get_next``/``get_next_unordered`` (or the
iterators of ``map``/``map_unordered``). Values submitted while every actor is busy wait
here, in order, for the next actor to come back::

    submit(fn, v) --idle actor?--> fn(actor, v) -> ref     (else: pending, FIFO)
    get_next()    --> result of the oldest ref, its actor idle again -> next pending submit
"""
from collections import deque

from .. import api
from ..core.object_ref import ObjectRef

__all__ = ["ActorPool"]

_TIMEOUT_MESSAGE = "Timed out waiting for result"


class ActorPool:
    """Operate on a fixed pool of actors.

    Args:
        actors: the actor handles to use (each is used by one call at a time).

    Example::

        pool = ActorPool([Doubler.remote(), Doubler.remote()])
        list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4]))   # [2, 4, 6, 8]
    """

    def __init__(self, actors):
        self._idle_actors = list(actors)
        self._future_to_actor = {}         # ref key -> (submission index, actor)
        self._index_to_future = {}         # submission index -> ref (or list of refs)
        self._next_task_index = 0
        self._next_return_index = 0
        self._pending_submits = deque()    # (fn, value) waiting for an idle actor

    # ------------------------------------------------------------------ bulk
    def map(self, fn, values):
        """Apply ``fn(actor, value)`` to every value, in parallel over the actors.

        Returns a generator of the results in the order of ``values``; the work proceeds as
        the generator is consumed (values beyond the number of actors are submitted when
        actors come back). Results still pending from earlier submissions are waited for and
        dropped first.
        """
        return self._map(fn, values, self.get_next)

    def map_unordered(self, fn, values):
        """Like :meth:`map`, but yield each result as soon as it is ready, in any order."""
        return self._map(fn, values, self.get_next_unordered)

    def _map(self, fn, values, next_result):
        self._drain()
        for value in values:
            self.submit(fn, value)

        def results():
            while self.has_next():
                yield next_result()
        return results()

    def _drain(self):
        """Wait for and drop whatever earlier submissions still have pending."""
        while self.has_next():
            try:
                self.get_next_unordered()
            except Exception:             # a failed earlier call: dropped like the others
                pass

    # ------------------------------------------------------------------ one at a time
    def submit(self, fn, value):
        """Schedule ``fn(actor, value)`` on an idle actor, or queue it until one is free."""
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        try:
            future = fn(actor, value)
        except BaseException:
            self._idle_actors.append(actor)
            raise
        refs = future if isinstance(future, (list, tuple)) else [future]
        if not refs or not all(isinstance(ref, ObjectRef) for ref in refs):
            self._idle_actors.append(actor)
            raise TypeError(f"fn(actor, value) must return an ObjectRef (e.g. "
                            f"actor.method.remote(value)), got {future!r}")
        index = self._next_task_index
        self._future_to_actor[_key(future)] = (index, actor)
        self._index_to_future[index] = future
        self._next_task_index += 1

    def has_next(self):
        """Whether any submitted result has not been returned yet."""
        return bool(self._future_to_actor)

    def get_next(self, timeout=None, ignore_if_timedout=False):
        """Return the next result in submission order, waiting up to ``timeout`` seconds.

        Raises:
            StopIteration: nothing is pending.
            TimeoutError: the result was not ready in time. With ``ignore_if_timedout`` the
                timed-out submission is dropped (its actor returns to the pool) and the next
                call moves on to the one after it; otherwise it stays next.
            ValueError: :meth:`get_next_unordered` already returned results out of order.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        index = self._next_return_index
        future = self._index_to_future[index]
        timed_out = False
        if timeout is not None:
            ready, _ = api.wait(_refs(future), num_returns=len(_refs(future)), timeout=timeout)
            if len(ready) < len(_refs(future)):
                if not ignore_if_timedout:
                    raise TimeoutError(_TIMEOUT_MESSAGE)
                timed_out = True
        del self._index_to_future[index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        self._return_actor(actor)
        if timed_out:
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}. The task {future} has been ignored.")
        return api.get(future)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        """Return whichever pending result is ready first, waiting up to ``timeout`` seconds.

        Raises:
            StopIteration: nothing is pending.
            TimeoutError: no result was ready in time. With ``ignore_if_timedout`` the oldest
                pending submission is dropped (its actor returns to the pool).
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        by_ref = {}
        for key, (index, _) in self._future_to_actor.items():
            for ref in _refs(self._index_to_future[index]):
                by_ref[ref] = key
        ready, _ = api.wait(list(by_ref), num_returns=1, timeout=timeout)
        if ready:
            key = by_ref[ready[0]]
            timed_out = False
        else:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMEOUT_MESSAGE)
            key = min(self._future_to_actor, key=lambda k: self._future_to_actor[k][0])
            timed_out = True
        index, actor = self._future_to_actor.pop(key)
        future = self._index_to_future.pop(index)
        self._next_return_index = max(self._next_return_index, index + 1)
        self._return_actor(actor)
        if timed_out:
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}. The task {future} has been ignored.")
        return api.get(future)

    # ------------------------------------------------------------------ the actors
    def _return_actor(self, actor):
        self._idle_actors.append(actor)
        if self._pending_submits:
            self.submit(*self._pending_submits.popleft())

    def has_free(self):
        """Whether an actor is idle and no submission is waiting for one."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Remove an idle actor from the pool and return it (``None`` if none is free)."""
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor):
        """Add an actor to the pool as idle (it takes a waiting submission, if any).

        Raises:
            ValueError: the actor already belongs to this pool.
        """
        busy = [a for _, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)


def _refs(future):
    return list(future) if isinstance(future, (list, tuple)) else [future]


def _key(future):
    return tuple(future) if isinstance(future, (list, tuple)) else future
