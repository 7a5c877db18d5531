"""``hpcray.util.metrics``, as ``ray.util.metrics``: ``Counter``, ``Gauge`` and ``Histogram``
with tags, recorded from the driver, tasks and actors anywhere in the job, and
:func:`snapshot`, the job's table of them (Ray exports them to Prometheus; an MPI job has
no port to scrape, so the job reads them itself, and the dashboard will show them).
"""
from ..core import metrics as _metrics
from ..launch import session
from ..wire import messages


class Metric:
    """What the three kinds share: a name, a description, tag keys and default tags."""
    _kind = None

    def __init__(self, name, description="", tag_keys=None):
        if not isinstance(name, str) or not name:
            raise ValueError(f"a metric needs a non-empty name, got {name!r}")
        tag_keys = tuple(tag_keys or ())
        if not all(isinstance(key, str) for key in tag_keys):
            raise TypeError(f"tag_keys must be a tuple of strings, got {tag_keys!r}")
        self._name = name
        self._description = description
        self._tag_keys = tag_keys
        self._default_tags = {}

    @property
    def info(self):
        return {"name": self._name, "description": self._description,
                "tag_keys": self._tag_keys, "default_tags": dict(self._default_tags)}

    def set_default_tags(self, default_tags):
        """Tags used when a record does not give them; returns the metric (Ray's)."""
        self._check_keys(default_tags)
        self._default_tags = dict(default_tags)
        return self

    def _check_keys(self, tags):
        unknown = set(tags) - set(self._tag_keys)
        if unknown:
            raise ValueError(f"metric {self._name}: unknown tag keys {sorted(unknown)} "
                             f"(its tag_keys are {list(self._tag_keys)})")

    def _tags(self, tags):
        merged = dict(self._default_tags)
        if tags:
            self._check_keys(tags)
            merged.update(tags)
        missing = [key for key in self._tag_keys if key not in merged]
        if missing:
            raise ValueError(f"metric {self._name}: missing value for tag key(s) {missing}")
        return tuple(sorted((key, str(value)) for key, value in merged.items()))

    def _record(self, value, tags, boundaries=None):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"metric {self._name}: a value must be a number, got {value!r}")
        _metrics.recorder.record(self._kind, self._name, self._description, self._tags(tags),
                                 float(value), boundaries)


class Counter(Metric):
    """A count that only goes up: ``inc(value=1.0, tags=None)``."""
    _kind = _metrics.COUNTER

    def inc(self, value=1.0, tags=None):
        if value <= 0:
            raise ValueError(f"Counter {self._name}: value must be > 0, got {value}")
        self._record(value, tags)


class Gauge(Metric):
    """A value that goes up and down: ``set(value, tags=None)``; the last set wins."""
    _kind = _metrics.GAUGE

    def set(self, value, tags=None):
        self._record(value, tags)


class Histogram(Metric):
    """Observations counted in buckets: ``observe(value, tags=None)``; ``boundaries`` (sorted,
    positive) are the buckets' upper bounds."""
    _kind = _metrics.HISTOGRAM

    def __init__(self, name, description="", boundaries=None, tag_keys=None):
        super().__init__(name, description, tag_keys)
        if not boundaries:
            raise ValueError(f"Histogram {name} needs boundaries (a sorted list of positive "
                             f"numbers)")
        if any(b <= 0 for b in boundaries) or list(boundaries) != sorted(boundaries):
            raise ValueError(f"Histogram {name}: boundaries must be sorted and positive, got "
                             f"{boundaries!r}")
        self._boundaries = tuple(float(b) for b in boundaries)

    def observe(self, value, tags=None):
        self._record(value, tags, self._boundaries)


def snapshot():
    """The job's metrics as the head adds them up, with everything this process and every
    finished task recorded: ``{name: {"type", "description", "values": [(tags, value)]}}``
    (a histogram's value: ``{"buckets", "count", "sum"}``, with its ``"boundaries"``)."""
    rt = session.runtime()
    # This process's own first (a worker process's go with its request, ahead of it).
    taken = None if getattr(rt, "in_worker_process", False) else _metrics.recorder.take()
    if taken is not None:
        with rt.lock:
            rt.transport.send(0, messages.metrics(taken))
            rt.transport.flush()
    return rt.requests.ask(messages.metrics_snapshot)


__all__ = ["Counter", "Gauge", "Histogram", "snapshot"]
