"""``Queue``: a FIFO queue shared by the driver, tasks and actors, as Ray's ``ray.util.queue``.

The items live in one async actor that holds an ``asyncio.Queue``; every ``Queue`` object is
a thin client holding that actor's handle, so it pickles and travels (to tasks, to actors, in
puts) and every copy talks to the same items::

    producer (task) -- put(item) ---> _QueueActor: asyncio.Queue <--- get() -- consumer (actor)

A blocking ``put``/``get`` waits *in the actor*, on the event loop (``asyncio.wait_for`` for a
timeout): the caller sleeps in ``hpcray.get`` on one call, nothing polls. Many callers can
wait at once (an async actor runs up to 1000 calls concurrently).
"""
import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable

from .. import api

__all__ = ["Queue", "Empty", "Full"]


class Empty(_stdlib_queue.Empty):
    """``get`` found nothing (``block=False``, or ``timeout`` passed); a ``queue.Empty``."""


class Full(_stdlib_queue.Full):
    """``put`` found no room (``block=False``, or ``timeout`` passed); a ``queue.Full``."""


class _QueueActorImpl:
    """The actor that holds the items (its methods run on the rank's event loop)."""

    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.queue = asyncio.Queue(maxsize)

    def qsize(self):
        return self.queue.qsize()

    def empty(self):
        return self.queue.empty()

    def full(self):
        return self.queue.full()

    async def put(self, item, timeout=None):
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except asyncio.TimeoutError:
            raise Full(f"no room in the queue (maxsize {self.maxsize}) within {timeout} s") \
                from None

    async def get(self, timeout=None):
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Empty(f"nothing arrived in the queue within {timeout} s") from None

    def put_nowait(self, item):
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Full(f"the queue is full (maxsize {self.maxsize})") from None

    def put_nowait_batch(self, items):
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            raise Full(f"Cannot add {len(items)} items to queue of size "
                       f"{self.queue.qsize()} and maxsize {self.maxsize}.")
        for item in items:
            self.queue.put_nowait(item)

    def get_nowait(self):
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            raise Empty("the queue is empty") from None

    def get_nowait_batch(self, num_items):
        if num_items > self.queue.qsize():
            raise Empty(f"Cannot get {num_items} items from queue of size "
                        f"{self.queue.qsize()}.")
        return [self.queue.get_nowait() for _ in range(num_items)]

    async def ping(self):
        return True


_QueueActor = api.remote(_QueueActorImpl)


def _plain(error):
    """``Empty``/``Full`` raised in the actor arrive as TaskErrors: re-raise them plainly."""
    for cls in (Empty, Full):
        if isinstance(error, cls):
            return cls(*error.args)
    return None


def _check_timeout(timeout):
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class Queue:
    """A first-in first-out queue, usable from the driver, tasks and actors.

    Args:
        maxsize: the most items it holds; ``0`` (or less) means no limit.
        actor_options: options for the actor holding the items (``num_cpus``, ``name``,
            ...), as ``ActorClass.options`` takes them.

    The object is picklable: pass it to tasks and actors, and they put and get on the same
    queue. Methods follow ``queue.Queue``; ``Empty``/``Full`` subclass ``queue.Empty``/
    ``queue.Full``.
    """

    def __init__(self, maxsize=0, actor_options=None):
        self.maxsize = maxsize
        self.actor = _QueueActor.options(**(actor_options or {})).remote(maxsize)

    def __len__(self):
        return self.size()

    def _actor(self):
        if self.actor is None:
            raise RuntimeError("this queue was shut down")
        return self.actor

    def _call(self, method, *args):
        try:
            return api.get(getattr(self._actor(), method).remote(*args))
        except (Empty, Full) as error:
            raise _plain(error) from None

    async def _call_async(self, method, *args):
        ref = getattr(self._actor(), method).remote(*args)
        try:
            # Shielded: a caller cancelled meanwhile (asyncio.wait_for) leaves the call's
            # Future alone; the call itself still completes in the actor.
            return await asyncio.shield(ref.as_future())
        except (Empty, Full) as error:
            raise _plain(error) from None

    # ------------------------------------------------------------------ state
    def size(self):
        """The number of items in the queue now."""
        return self._call("qsize")

    qsize = size

    def empty(self):
        """Whether the queue is empty now."""
        return self._call("empty")

    def full(self):
        """Whether the queue is full now (never, without a maxsize)."""
        return self._call("full")

    # ------------------------------------------------------------------ put
    def put(self, item, block=True, timeout=None):
        """Add ``item``; if the queue is full, wait (up to ``timeout`` seconds) for room.

        Raises:
            Full: ``block=False`` and the queue is full, or no room came within ``timeout``.
            ValueError: a negative ``timeout``.
        """
        if not block:
            return self._call("put_nowait", item)
        _check_timeout(timeout)
        return self._call("put", item, timeout)

    async def put_async(self, item, block=True, timeout=None):
        """``put`` as a coroutine: ``await queue.put_async(item)``."""
        if not block:
            return await self._call_async("put_nowait", item)
        _check_timeout(timeout)
        return await self._call_async("put", item, timeout)

    def put_nowait(self, item):
        """``put(item, block=False)``."""
        return self.put(item, block=False)

    def put_nowait_batch(self, items):
        """Add every item of ``items``, in order, at once; all or none.

        Raises:
            Full: the items do not all fit.
            TypeError: ``items`` is not iterable.
        """
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        return self._call("put_nowait_batch", list(items))

    # ------------------------------------------------------------------ get
    def get(self, block=True, timeout=None):
        """Remove and return the oldest item; if there is none, wait (up to ``timeout``).

        Raises:
            Empty: ``block=False`` and the queue is empty, or nothing came within ``timeout``.
            ValueError: a negative ``timeout``.
        """
        if not block:
            return self._call("get_nowait")
        _check_timeout(timeout)
        return self._call("get", timeout)

    async def get_async(self, block=True, timeout=None):
        """``get`` as a coroutine: ``item = await queue.get_async()``.

        Bound the wait with ``timeout`` rather than by cancelling the coroutine: a get that
        is cancelled while it waits still takes the next item in the actor, and drops it."""
        if not block:
            return await self._call_async("get_nowait")
        _check_timeout(timeout)
        return await self._call_async("get", timeout)

    def get_nowait(self):
        """``get(block=False)``."""
        return self.get(block=False)

    def get_nowait_batch(self, num_items):
        """Remove and return the ``num_items`` oldest items, in order; all or none.

        Raises:
            Empty: fewer than ``num_items`` items are in the queue.
            TypeError, ValueError: ``num_items`` is not a non-negative int.
        """
        if not isinstance(num_items, int) or isinstance(num_items, bool):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        return self._call("get_nowait_batch", num_items)

    # ------------------------------------------------------------------ end
    def shutdown(self, force=False, grace_period_s=5):
        """End the actor holding the items; its items are gone, and so is this queue.

        Without ``force``, the actor is first given up to ``grace_period_s`` seconds to answer
        (it finishes taking in what reached it); then it is killed, and callers still waiting
        in ``get``/``put`` anywhere get ``ActorDiedError``.
        """
        actor, self.actor = self.actor, None
        if actor is None:
            return
        if not force:
            api.wait([actor.ping.remote()], timeout=grace_period_s)
        api.kill(actor)
