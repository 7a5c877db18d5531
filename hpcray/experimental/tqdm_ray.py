"""Progress bars from tasks and actors, shown by the driver: Ray's
``ray.experimental.tqdm_ray``.

A bar made inside a task or an actor travels to the driver as a record (with what the task
prints, ``core/output.py``), never as text, and the driver shows each bar as one clean line:
redrawn in place on a terminal; when its stderr is a file (a Slurm output file), a plain line
at most every 5 s and one when the bar closes, with no carriage return or escape code. A bar
used on the driver itself is drawn the same way.

    from hpcray.experimental.tqdm_ray import tqdm

    @hpcray.remote
    def work(n):
        for _ in tqdm(range(n), desc="work"):
            ...
"""
import os
import threading
import time
import uuid

from ..core import output

__all__ = ["tqdm", "safe_print"]


def safe_print(*args, **kwargs):
    """``print`` that does not tear the bars drawn on the driver's terminal (Ray's
    ``safe_print``; while bars are drawn on a terminal the driver's ``print`` is this)."""
    return output.safe_print(*args, **kwargs)


class tqdm:
    """A progress bar that may be used in any task or actor (and on the driver), with the
    subset of ``tqdm.tqdm`` that Ray's ``tqdm_ray.tqdm`` has.

    Args:
        iterable: what to iterate over (``for x in tqdm(items)``); its ``len`` is the total
            unless ``total`` is given.
        desc: the text before the bar.
        total: the count at 100 % (None: unknown, the bar shows the count and the rate).
        unit: the unit of the count (``"it"``).
        position: the bar's line among those of its process.
        flush_interval_s: the bar's state goes to the driver at most this often (1 s; a
            close always goes).
    """

    DEFAULT_FLUSH_INTERVAL_SECONDS = 1.0

    def __init__(self, iterable=None, desc=None, total=None, unit=None, position=None,
                 flush_interval_s=None):
        if total is None and iterable is not None:
            try:
                total = len(iterable)
            except (TypeError, AttributeError):
                total = None
        self._iterable = iterable
        self._desc = desc or ""
        self._total = total
        self._unit = unit or "it"
        self._pos = position or 0
        self._uuid = uuid.uuid4().hex
        self._pid = os.getpid()
        self._x = 0
        self._closed = False
        self._flush_interval_s = (self.DEFAULT_FLUSH_INTERVAL_SECONDS if flush_interval_s is None
                                  else flush_interval_s)
        self._started = time.monotonic()
        self._last_flush_time = 0.0
        self._lock = threading.Lock()
        self._dump_state()

    def set_description(self, desc):
        """Change the text before the bar (``tqdm.set_description``)."""
        self._desc = desc
        self._dump_state()

    def update(self, n=1):
        """Advance the count by ``n`` (``tqdm.update``)."""
        self._x += n
        self._dump_state()

    def close(self):
        """The bar is done: its final state goes to the driver, which shows it once more."""
        if self._closed:
            return
        self._closed = True
        self._dump_state(force_flush=True)

    def refresh(self):
        """Send the bar's state now if its interval allows (``tqdm.refresh``)."""
        self._dump_state()

    @property
    def total(self):
        """The count at 100 % (None: unknown)."""
        return self._total

    @total.setter
    def total(self, total):
        self._total = total

    @property
    def n(self):
        """The count so far."""
        return self._x

    @n.setter
    def n(self, n):
        self._x = n

    def _dump_state(self, force_flush=False):
        now = time.monotonic()
        with self._lock:
            if not force_flush and now - self._last_flush_time < self._flush_interval_s:
                return
            self._last_flush_time = now
            state = self._get_state(now)
        output.emit_bar(state)

    def _get_state(self, now):
        return {"x": self._x, "pos": self._pos, "desc": self._desc, "total": self._total,
                "unit": self._unit, "pid": self._pid, "uuid": self._uuid,
                "closed": self._closed, "elapsed": now - self._started}

    def __iter__(self):
        if self._iterable is None:
            raise ValueError("No iterable provided")
        for item in iter(self._iterable):
            self.update(1)
            yield item
        self.close()

    def __len__(self):
        return self._total if self._total is not None else len(self._iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
