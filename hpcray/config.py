"""Every environment knob of hpcray, in one place.

Each knob is read once, when the runtime starts on a rank. All are named ``HPCRAY_*``.

===========================  ==========  ==========================================================
variable                     default     meaning
===========================  ==========  ==========================================================
HPCRAY_PREFETCH              2           tasks the head may queue on a worker beyond its CPUs, to
                                         hide the round trip between a result and the next task
HPCRAY_QUEUE_SECONDS         0.002       for short tasks, the head queues about this much work (by the
                                         measured mean task time) on each rank, up to 64 tasks
HPCRAY_SPIN_SECONDS          0.0005      after activity, a waiting rank polls MPI without sleeping
                                         for this long (low latency for back-to-back work)
HPCRAY_POLL_MAX_SLEEP        0.002       longest sleep between two polls of an idle rank; bounds the
                                         latency of the first message after idling and the CPU an
                                         idle rank burns (about 1 % of a core at 2 ms)
HPCRAY_BACKGROUND_POLL       0.001       interval at which a rank busy in user code (the driver's
                                         script, a running task) still serves messages
HPCRAY_SHUTDOWN_GRACE        5           seconds the head waits for workers to acknowledge shutdown
                                         before it aborts the job
HPCRAY_CPUS_PER_RANK         1           logical CPUs each worker rank advertises under mpirun/srun
                                         (``init(num_cpus=...)`` overrides it)
HPCRAY_NUM_WORKERS           cores       workers the embedded default starts for ``python script.py``
                                         when ``init`` is given no ``num_cpus``
HPCRAY_RANKS_PER_NODE        0 (off)     split each host's ranks into simulated nodes of K ranks, each
                                         with its own node state (also ``--ranks-per-node K``)
===========================  ==========  ==========================================================
"""
import os
from dataclasses import dataclass


def _float(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def _int(name, default):
    value = _float(name, default)
    if value != int(value):
        raise ValueError(f"{name}={value!r} is not an integer")
    return int(value)


@dataclass(frozen=True)
class Config:
    prefetch: int
    queue_seconds: float
    spin_seconds: float
    poll_max_sleep: float
    background_poll: float
    shutdown_grace: float
    cpus_per_rank: float
    num_workers: int
    ranks_per_node: int

    @classmethod
    def from_env(cls):
        return cls(
            prefetch=_int("HPCRAY_PREFETCH", 2),
            queue_seconds=_float("HPCRAY_QUEUE_SECONDS", 0.002),
            spin_seconds=_float("HPCRAY_SPIN_SECONDS", 0.0005),
            poll_max_sleep=_float("HPCRAY_POLL_MAX_SLEEP", 0.002),
            background_poll=_float("HPCRAY_BACKGROUND_POLL", 0.001),
            shutdown_grace=_float("HPCRAY_SHUTDOWN_GRACE", 5.0),
            cpus_per_rank=_float("HPCRAY_CPUS_PER_RANK", 1.0),
            num_workers=_int("HPCRAY_NUM_WORKERS", os.cpu_count() or 1),
            ranks_per_node=_int("HPCRAY_RANKS_PER_NODE", 0),
        )
