"""Application metrics (``hpcray.util.metrics``: Ray's Counter, Gauge and Histogram) as this
process records them, and the job-wide table they add up to.

Every process (the driver, a rank, a worker process) records into its own :data:`recorder`;
what it recorded since it last said so leaves as *deltas* (:meth:`Recorder.take`): a worker
process's go to its rank (with its next message), a rank's to the head (each turn that has
some, ahead of the results of that turn), and the head adds them up in a :class:`MetricsTable`
that any process can read (``metrics.snapshot()``). A task's metrics are therefore in the
table once its result is back.

Pure state (no MPI, no runtime): ``tests/test_state_holders.py`` drives both classes.
"""
import threading

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"


class Recorder:
    """What this process recorded since its deltas were last taken (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.described = {}                    # name -> (kind, description, boundaries)
        self.pending = {}                      # (name, tags) -> delta (see record)

    def record(self, kind, name, description, tags, value, boundaries=None):
        """Add one observation: a counter's increment, a gauge's new value, or a value a
        histogram puts in its bucket. ``tags``: a tuple of ``(key, value)`` pairs."""
        key = (name, tags)
        with self.lock:
            self.described.setdefault(name, (kind, description, boundaries))
            if kind == COUNTER:
                self.pending[key] = self.pending.get(key, 0.0) + value
            elif kind == GAUGE:
                self.pending[key] = value
            else:
                bucket = sum(1 for bound in boundaries if value > bound)
                entry = self.pending.get(key)
                if entry is None:
                    entry = self.pending[key] = [[0] * (len(boundaries) + 1), 0, 0.0]
                entry[0][bucket] += 1
                entry[1] += 1
                entry[2] += value

    @property
    def dirty(self):
        return bool(self.pending)

    def take(self):
        """``(descriptions, deltas)`` recorded since the last take, or None if nothing was."""
        with self.lock:
            if not self.pending:
                return None
            pending, self.pending = self.pending, {}
            described = {name: self.described[name] for name, _ in pending}
        return described, pending

    def put_back(self, taken):
        """Deltas a worker process sent its rank: the rank's to pass on with its own."""
        described, deltas = taken
        with self.lock:
            for name, description in described.items():
                self.described.setdefault(name, description)
            for key, delta in deltas.items():
                kind = self.described[key[0]][0]
                self.pending[key] = _add(kind, self.pending.get(key), delta)


def _add(kind, total, delta):
    if total is None:
        return [list(delta[0]), delta[1], delta[2]] if kind == HISTOGRAM else delta
    if kind == COUNTER:
        return total + delta
    if kind == GAUGE:
        return delta
    return [[a + b for a, b in zip(total[0], delta[0])], total[1] + delta[1],
            total[2] + delta[2]]


class MetricsTable:
    """The head's sum of every process's deltas."""

    def __init__(self):
        self.described = {}
        self.values = {}                       # (name, tags) -> value

    def merge(self, taken):
        described, deltas = taken
        for name, description in described.items():
            self.described.setdefault(name, description)
        for key, delta in deltas.items():
            kind = self.described[key[0]][0]
            self.values[key] = _add(kind, self.values.get(key), delta)

    def snapshot(self):
        """``{name: {"type", "description", "boundaries"?, "values": [(tags dict,
        value)]}}``; a histogram's value is ``{"buckets", "count", "sum"}``."""
        table = {}
        for (name, tags), value in sorted(self.values.items(), key=lambda item: repr(item[0])):
            kind, description, boundaries = self.described[name]
            entry = table.setdefault(name, {"type": kind, "description": description,
                                            "values": []})
            if kind == HISTOGRAM:
                entry["boundaries"] = list(boundaries)
                value = {"buckets": list(value[0]), "count": value[1], "sum": value[2]}
            entry["values"].append((dict(tags), value))
        return table

    def forget(self):
        self.described.clear()
        self.values.clear()


recorder = Recorder()                          # this process's
