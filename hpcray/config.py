"""Every knob of hpcray, declared once: environment variable, type, default, meaning.

``KNOBS`` is the single source. :meth:`Config.load` reads each knob from the environment (and
from the launcher's command-line flags, which name the same knobs), parses it with the knob's
parser and returns a frozen :class:`Config`; a value that does not parse is a
:class:`ConfigError` naming the variable or flag, raised when the job starts, for every knob
alike. Nothing else in hpcray reads ``HPCRAY_*`` variables: every role receives the
``Config`` of its rank. ``python -m hpcray.config`` prints the table of knobs.

This module imports nothing else of hpcray but ``exceptions`` (it is on the ground floor).
"""
import json
import os
import sys
import tempfile
from dataclasses import dataclass, fields

from .exceptions import ConfigError

# Not a knob: the CUDA_VISIBLE_DEVICES the launcher had set, remembered by the GPU pinning
# (launch/resources.py) so that a later init() in the same process still sees the node's GPUs.
LAUNCH_CUDA_VISIBLE_DEVICES = "HPCRAY_LAUNCH_CUDA_VISIBLE_DEVICES"

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


# ---------------------------------------------------------------------- parsers
# Each takes the raw text and returns the value, or raises ValueError saying what is wrong.
def parse_bytes(text):
    """``"2G"`` -> 2147483648; ``512M``, ``4KiB`` and plain numbers (bytes) work too."""
    raw = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _UNITS and raw[-1:] else ""
    try:
        value = float(raw[:-1] if unit else raw) * _UNITS[unit]
    except ValueError:
        raise ValueError("is not a size (examples: 1073741824, 512M, 2G)") from None
    if value < 0:
        raise ValueError("must not be negative")
    return int(value)


def _number(text, integer):
    try:
        value = float(text)
    except ValueError:
        raise ValueError("is not a number") from None
    if value < 0:
        raise ValueError("must not be negative")
    if integer:
        if value != int(value):
            raise ValueError("is not an integer")
        return int(value)
    return value


def count(text):
    """A non-negative integer."""
    return _number(text, integer=True)


def seconds(text):
    """A non-negative number of seconds."""
    return _number(text, integer=False)


def positive_seconds(text):
    value = _number(text, integer=False)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def positive_count(text):
    value = _number(text, integer=True)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def choice(*options):
    def parse(text):
        if text not in options:
            raise ValueError(f"choose one of {', '.join(options)}")
        return text
    parse.__doc__ = f"One of {', '.join(options)}."
    return parse


def fraction(text):
    """A fraction of a whole: more than 0, at most 1."""
    value = _number(text, integer=False)
    if not 0 < value <= 1:
        raise ValueError("must be more than 0 and at most 1 (0.95: 95%)")
    return value


def gpu_ids(text):
    """Comma-separated GPU ids (``0,1``); empty: no GPUs."""
    return tuple(item.strip() for item in str(text).split(",") if item.strip())


def custom_resources(text):
    """A JSON object ``{"name": amount}`` of non-negative amounts."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object {name: amount}")
    for name, amount in value.items():
        if name in ("CPU", "GPU", "memory"):
            raise ValueError(f"{name!r} is set by hpcray itself (use --gpus / "
                             f"HPCRAY_CPUS_PER_RANK)")
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"{name!r} needs a non-negative number, got {amount!r}")
    return tuple(sorted((name, float(amount)) for name, amount in value.items()))


def directory(text):
    """A directory path."""
    return str(text)


def switch(text):
    """On or off: 1/0, true/false, yes/no, on/off."""
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not on or off (1/0, true/false, yes/no, on/off)")


# ---------------------------------------------------------------------- the knobs
@dataclass(frozen=True)
class Knob:
    """One knob: the Config field, its variable, its parser, its default, what it means,
    and the ``python -m hpcray`` flag that also sets it (if any)."""
    field: str
    env: str
    parse: object
    default: object
    doc: str
    flag: str = None


def _cores():
    return os.cpu_count() or 1


KNOBS = (
    Knob("prefetch", "HPCRAY_PREFETCH", count, 2,
         "tasks the head may queue on a worker beyond its CPUs, to hide the round trip "
         "between a result and the next task"),
    Knob("queue_seconds", "HPCRAY_QUEUE_SECONDS", seconds, 0.002,
         "for short tasks, the head queues about this much work (by the measured mean task "
         "time) on each rank, up to 64 tasks"),
    Knob("spin_seconds", "HPCRAY_SPIN_SECONDS", seconds, 0.0005,
         "after activity, a waiting rank polls MPI without sleeping for this long (low "
         "latency for back-to-back work)"),
    Knob("poll_max_sleep", "HPCRAY_POLL_MAX_SLEEP", positive_seconds, 0.002,
         "longest sleep between two polls of an idle rank; bounds the latency of the first "
         "message after idling and the CPU an idle rank burns (about 1 % of a core at 2 ms)"),
    Knob("background_poll", "HPCRAY_BACKGROUND_POLL", positive_seconds, 0.001,
         "interval at which a rank busy in user code (the driver's script, a running task) "
         "still serves messages"),
    Knob("shutdown_grace", "HPCRAY_SHUTDOWN_GRACE", seconds, 5.0,
         "seconds the head waits for workers to acknowledge the end of the job; a worker "
         "still busy in a task is not waited for (its task is abandoned, as in Ray)"),
    Knob("cpus_per_rank", "HPCRAY_CPUS_PER_RANK", seconds, 0.0,
         "logical CPUs each worker rank advertises; 0: SLURM_CPUS_PER_TASK, else the host's "
         "cores shared by its worker ranks (init(num_cpus=...) overrides it)"),
    Knob("gpus", "HPCRAY_GPUS", gpu_ids, None,
         "a node's GPU ids (0,1) where none can be detected; dealt to the node's worker "
         "ranks, one each, and pinned with CUDA_VISIBLE_DEVICES (launch/resources.py)",
         flag="--gpus"),
    Knob("resources", "HPCRAY_RESOURCES", custom_resources, (),
         'custom resources of each worker rank, JSON: {"name": 2}', flag="--resources"),
    Knob("num_workers", "HPCRAY_NUM_WORKERS", positive_count, _cores,
         "workers the embedded default starts for `python script.py` when init() is given "
         "no num_cpus (default: the machine's cores)"),
    Knob("object_store_memory", "HPCRAY_OBJECT_STORE_MEMORY", parse_bytes, 0,
         "bytes of each node's object store (2G, 512M work too; init(object_store_memory=) "
         "for the embedded default); 0: 30 % of RAM shared by the stores of a host, at most "
         "90 % of what /dev/shm has free", flag="--object-store-memory"),
    Knob("spill_dir", "HPCRAY_SPILL_DIR", directory, tempfile.gettempdir,
         "where a full store spills objects nobody reads (a directory per job and node, mode "
         "0700, made on the first spill and removed at the end); default: $TMPDIR"),
    Knob("inline_limit", "HPCRAY_INLINE_LIMIT", parse_bytes, 256 << 10,
         "objects whose buffers total less travel inline in messages; larger ones are "
         "written once into the node's store"),
    Knob("transfer", "HPCRAY_TRANSFER", choice("rma", "p2p"), "rma",
         "how objects move between nodes: rma (one-sided MPI_Rget from the node's store "
         "window) or p2p (matched Isend/Irecv straight into the stores, 32 MiB chunks)"),
    Knob("copy_fanout", "HPCRAY_COPY_FANOUT", count, 1,
         "copies of one object a node serves to other nodes at once (rma): nodes asking "
         "together get it by a binomial tree (store/copy_tree.py); 0: no tree"),
    Knob("ranks_per_node", "HPCRAY_RANKS_PER_NODE", count, 0,
         "split each host's ranks into simulated nodes of K ranks, each with its own node "
         "state; 0: off", flag="--ranks-per-node"),
    Knob("collective_timeout", "HPCRAY_COLLECTIVE_TIMEOUT", positive_seconds, 300.0,
         "seconds a collective (hpcray.util.collective) waits for every member before it "
         "fails with CollectiveError"),
    Knob("preempt_grace", "HPCRAY_PREEMPT_GRACE", seconds, 20.0,
         "after SIGTERM (Slurm time limit, preemption), seconds the shutdown hooks and "
         "running work get before the job ends with status 143"),
    Knob("liveness_timeout", "HPCRAY_LIVENESS_TIMEOUT", positive_seconds, 3.0,
         "a rank on another host than the head's that sends no heartbeat for this long is "
         "declared dead (ranks of one host see each other's death within ~0.1 s); a rank "
         "that hears nothing from the head for this long ends"),
    Knob("worker_processes", "HPCRAY_WORKER_PROCESSES", switch, True,
         "run tasks in worker processes that each rank forks (a crash fails the task "
         "alone, which is retried); 0: in threads of the rank itself (a crash ends the rank)"),
    Knob("memory_usage_threshold", "HPCRAY_MEMORY_USAGE_THRESHOLD", fraction, 0.95,
         "when a node's memory use (its cgroup's, under Slurm) passes this fraction, each "
         "of its ranks ends the worker process of its newest retriable task, which fails "
         "with OutOfMemoryError and is retried (max_retries), as Ray's memory monitor does"),
    Knob("memory_monitor_refresh_ms", "HPCRAY_MEMORY_MONITOR_REFRESH_MS", count, 250,
         "milliseconds between two looks at the node's memory while tasks run; 0: no "
         "memory monitor"),
    Knob("gc_threshold", "HPCRAY_GC_THRESHOLD", count, 10000,
         "allocations between two young-generation garbage collections in the ranks and "
         "worker processes (Python's default, 700, collects ~14x as often: the runtime "
         "allocates per task, and so does recording); 0: leave Python's setting"),
    Knob("job_dir", "HPCRAY_JOB_DIR", directory, "",
         "the job directory (status snapshot, dashboard.html, per-rank logs, the final "
         "report); default ./hpcray-<Slurm job id or start time>; 'off': none"),
    Knob("status_interval", "HPCRAY_STATUS_INTERVAL", positive_seconds, 1.0,
         "seconds between two status snapshots the head writes into the job directory"),
    Knob("record", "HPCRAY_RECORD", switch, True,
         "record tasks, actor calls, transfers and get waits for the state API, the "
         "timeline and the dashboard (0: off, to measure what recording costs)"),
    Knob("events_per_rank", "HPCRAY_EVENTS_PER_RANK", positive_count, 20000,
         "events the head keeps per rank for the timeline and list_tasks (a ring: older "
         "ones live on only in the per-function aggregates)"),
    Knob("dedup_logs", "HPCRAY_DEDUP_LOGS", switch, True,
         "fold lines that tasks and actors of several processes print alike (numbers aside) "
         "within 5 s into one '[repeated Nx across cluster]' line on the driver, as Ray's "
         "RAY_DEDUP_LOGS does; 0: print every line"),
    Knob("progress", "HPCRAY_PROGRESS", switch, True,
         "a get or wait of several refs on the driver that lasts more than 3 s shows how many "
         "are ready on stderr (redrawn in place on a terminal, a line every 10 s otherwise); "
         "0: never"),
    Knob("supervise", "HPCRAY_SUPERVISE", switch, True,
         "under python -m hpcray, run each rank in a child of a supervisor process, so that "
         "a worker rank killed by a signal leaves the job going with the script's exit "
         "status (launch/supervisor.py); 0: the launcher's process is the rank"),
)

_BY_FIELD = {knob.field: knob for knob in KNOBS}


@dataclass(frozen=True)
class Config:
    """The knobs of one rank, parsed (see ``KNOBS`` for each field's meaning)."""
    prefetch: int
    queue_seconds: float
    spin_seconds: float
    poll_max_sleep: float
    background_poll: float
    shutdown_grace: float
    cpus_per_rank: float
    gpus: tuple
    resources: tuple
    num_workers: int
    object_store_memory: int
    spill_dir: str
    inline_limit: int
    transfer: str
    copy_fanout: int
    ranks_per_node: int
    collective_timeout: float
    preempt_grace: float
    liveness_timeout: float
    worker_processes: bool
    memory_usage_threshold: float
    memory_monitor_refresh_ms: int
    gc_threshold: int
    job_dir: str
    status_interval: float
    record: bool
    events_per_rank: int
    dedup_logs: bool
    progress: bool
    supervise: bool

    @classmethod
    def load(cls, environ=None, flags=None):
        """Parse every knob: ``flags`` (``{field: text}`` from the command line) first, then
        ``environ`` (default ``os.environ``), then the default.

        Raises:
            ConfigError: a value that does not parse, naming the flag or variable.
        """
        environ = os.environ if environ is None else environ
        flags = flags or {}
        unknown = set(flags) - set(_BY_FIELD)
        if unknown:
            raise ConfigError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        values = {}
        for knob in KNOBS:
            if flags.get(knob.field) is not None:
                raw, source = flags[knob.field], knob.flag or knob.field
            else:
                raw, source = environ.get(knob.env), knob.env
            if raw is None or raw == "":
                default = knob.default
                values[knob.field] = default() if callable(default) else default
                continue
            try:
                values[knob.field] = knob.parse(raw)
            except ValueError as error:
                raise ConfigError(f"{source}={raw!r} {error}") from None
        return cls(**values)

    def replace(self, **changes):
        """A copy with some fields changed (values already parsed)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Config(**current)


def parse_knob(field, text, source=None):
    """Parse one knob's text as its declaration says (e.g. ``init(object_store_memory=)``).

    Raises:
        ConfigError: naming ``source`` (default: the knob's variable).
    """
    knob = _BY_FIELD[field]
    try:
        return knob.parse(str(text))
    except ValueError as error:
        raise ConfigError(f"{source or knob.env}={text!r} {error}") from None


def table():
    """The knobs as a text table: variable, default, meaning (``python -m hpcray.config``)."""
    lines = []
    for knob in KNOBS:
        default = knob.default
        if callable(default):
            default = {"_cores": "cores", "gettempdir": "$TMPDIR"}.get(default.__name__,
                                                                       default.__name__)
        flag = f" (also {knob.flag})" if knob.flag else ""
        lines.append(f"{knob.env:28s} {str(default):10s} {knob.doc}{flag}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
