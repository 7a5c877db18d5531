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
HPCRAY_CPUS_PER_RANK         auto        logical CPUs each worker rank advertises; by default
                                         ``SLURM_CPUS_PER_TASK``, else the host's cores shared by its
                                         worker ranks (``init(num_cpus=...)`` overrides it)
HPCRAY_GPUS                  detected    a node's GPU ids (``0,1``) where none can be detected (also
                                         ``--gpus``); dealt to the node's worker ranks, one each,
                                         and pinned with CUDA_VISIBLE_DEVICES (see resources.py)
HPCRAY_RESOURCES             none        custom resources of each worker rank, JSON: ``{"name": 2}``
                                         (also ``--resources``)
HPCRAY_NUM_WORKERS           cores       workers the embedded default starts for ``python script.py``
                                         when ``init`` is given no ``num_cpus``
HPCRAY_OBJECT_STORE_MEMORY   30 % RAM    bytes of each node's object store (``2G``, ``512M`` work too;
                                         also ``--object-store-memory``, or ``init(
                                         object_store_memory=...)`` for the embedded default). The
                                         default is 30 % of RAM shared by the stores of a host, at
                                         most 90 % of what /dev/shm has free
HPCRAY_SPILL_DIR             $TMPDIR     where a full store spills objects nobody reads (a directory
                                         per job and node, mode 0700, removed at the end)
HPCRAY_INLINE_LIMIT          256K        objects whose buffers total less travel inline in messages;
                                         larger ones are written once into the node's store
HPCRAY_TRANSFER              rma         how objects move between nodes: ``rma`` (one-sided MPI_Rget
                                         from the node's store window) or ``p2p`` (matched
                                         Isend/Irecv straight into the stores, 32 MiB chunks)
HPCRAY_COPY_FANOUT           1           copies of one object a node serves to other nodes at once
                                         (``rma``): nodes asking together get it by a binomial tree,
                                         each finished copy serving the next (copy_tree.py); 0 = no
                                         tree, every node reads the object's home node at once
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


def _choice(name, default, choices):
    value = os.environ.get(name) or default
    if value not in choices:
        raise ValueError(f"{name}={value!r}: choose one of {', '.join(choices)}")
    return value


def _int(name, default):
    value = _float(name, default)
    if value != int(value):
        raise ValueError(f"{name}={value!r} is not an integer")
    return int(value)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text, what="size"):
    """``"2G"`` -> 2147483648; plain numbers are bytes."""
    raw = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _UNITS and raw[-1:] else ""
    try:
        value = float(raw[:-1] if unit else raw) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"{what}={text!r} is not a size (examples: 1073741824, 512M, 2G)") from None
    if value < 0:
        raise ValueError(f"{what}={text!r} must not be negative")
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
    object_store_memory: int     # 0: the default
    inline_limit: int
    transfer: str
    copy_fanout: int

    @classmethod
    def from_env(cls):
        return cls(
            prefetch=_int("HPCRAY_PREFETCH", 2),
            queue_seconds=_float("HPCRAY_QUEUE_SECONDS", 0.002),
            spin_seconds=_float("HPCRAY_SPIN_SECONDS", 0.0005),
            poll_max_sleep=_float("HPCRAY_POLL_MAX_SLEEP", 0.002),
            background_poll=_float("HPCRAY_BACKGROUND_POLL", 0.001),
            shutdown_grace=_float("HPCRAY_SHUTDOWN_GRACE", 5.0),
            cpus_per_rank=_float("HPCRAY_CPUS_PER_RANK", 0.0),
            num_workers=_int("HPCRAY_NUM_WORKERS", os.cpu_count() or 1),
            ranks_per_node=_int("HPCRAY_RANKS_PER_NODE", 0),
            object_store_memory=parse_bytes(os.environ.get("HPCRAY_OBJECT_STORE_MEMORY") or "0",
                                            "HPCRAY_OBJECT_STORE_MEMORY"),
            inline_limit=parse_bytes(os.environ.get("HPCRAY_INLINE_LIMIT") or "256K",
                                     "HPCRAY_INLINE_LIMIT"),
            transfer=_choice("HPCRAY_TRANSFER", "rma", ("rma", "p2p")),
            copy_fanout=_int("HPCRAY_COPY_FANOUT", 1),
        )
