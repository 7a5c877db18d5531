"""What the caller of a generator task holds: Ray's ``ObjectRefGenerator`` (``num_returns=
"streaming"``, the default for generator functions) and ``DynamicObjectRefGenerator``
(``num_returns="dynamic"``).

A generator task's items reach its owner one by one as the task yields them (``GEN_ITEM``;
``ownership.Stream`` keeps them); its one return object, the end of the stream, holds how
many there were, or the error that ended it before its first item. ``ObjectRefGenerator``
hands out one ``ObjectRef`` per item, in order, waiting for each (``access.next_item``); an
item the task failed at raises when it is got, as in Ray; then the iteration stops.
"""
import asyncio

from . import current


class ObjectRefGenerator:
    """Iterate it (``for``, ``next``, ``async for``) for the ObjectRefs of a generator
    task's items while the task still runs. ``ray.wait([gen])`` is ready when the next item
    is; ``cancel(gen)`` cancels the task; ``completed()`` is the ref of its end."""

    def __init__(self, ref):
        self._ref = ref                        # the task's return object: end of the stream
        self._ended = False

    def __iter__(self):
        return self

    def __next__(self):
        return self._next(None)

    def _next(self, timeout):
        if self._ended:
            raise StopIteration
        ref = current.runtime().access.next_item(self._ref.id, timeout)
        if ref is None:
            self._ended = True
            raise StopIteration
        return ref

    def next_ready(self):
        """Whether :func:`next` would return at once."""
        return current.runtime().access.item_ready(self._ref.id)

    def is_finished(self):
        """Whether the task is over and every item was handed out."""
        return self._ended or current.runtime().access.stream_ended(self._ref.id)

    def completed(self):
        """The ref of the task's end: ready once every item was yielded."""
        return self._ref

    def __aiter__(self):
        return self

    async def __anext__(self):
        loop = asyncio.get_running_loop()
        ref = await loop.run_in_executor(None, self._next_or_none)
        if ref is None:
            raise StopAsyncIteration
        return ref

    def _next_or_none(self):
        try:
            return self._next(None)
        except StopIteration:
            return None

    def __reduce__(self):
        raise TypeError("an ObjectRefGenerator cannot be passed to another task or actor: "
                        "iterate it where its task was submitted, and pass the ObjectRefs "
                        "it gives")

    def __repr__(self):
        return f"ObjectRefGenerator({self._ref.hex()})"


class DynamicObjectRefGenerator:
    """The value of a ``num_returns="dynamic"`` task: the ObjectRefs of its items, in order
    (iterate it, or take ``len``)."""

    def __init__(self, refs):
        self._refs = list(refs)

    def __iter__(self):
        return iter(self._refs)

    def __len__(self):
        return len(self._refs)

    def __repr__(self):
        return f"DynamicObjectRefGenerator({len(self._refs)} refs)"
