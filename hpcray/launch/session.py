"""The session of this process: ``init()``, ``shutdown()``, and the runtime the public API
uses (starting one with the defaults on first use, as Ray does).

How ``init()`` finds its job:

* under ``python -m hpcray`` the runtime already runs (``cli.py`` built it): ``init()``
  attaches, and declared resources start a new session on every rank;
* under ``mpiexec python script.py`` (no ``-m hpcray``), every rank joins in ``init()``;
  ranks other than 0 then serve work there and exit when the job ends;
* otherwise it starts the embedded default (``embedded.py``).
"""
import atexit
import sys

from ..config import Config, parse_knob
from ..core import current
from . import embedded, preemption, resources
from .join import (declared_resources, finalize, finish_launched, import_mpi,
                   launched_by_mpi, serve, start_runtime, worker_exit_hard)

LAUNCHED, EMBEDDED = "launched", "embedded"


class SessionState:
    """Process-wide facts of the session (set once the runtime starts)."""

    def __init__(self):
        self.mode = None            # LAUNCHED (python -m hpcray / mpiexec) or EMBEDDED
        self.initialized = False    # init() was called (or implied) in the current session
        self.namespace = None
        self.runtime_env = None     # init(runtime_env=), checked: under every task's and actor's
        self.runtime = None         # the runtime of the current session, once initialized


state = SessionState()


def runtime():
    """This process's runtime, starting hpcray with the defaults if ``init()`` was not
    called (as a first ``ray.remote`` call does in Ray)."""
    rt = state.runtime
    if rt is not None:
        return rt
    inside = _worker_link()
    if inside is not None:
        return inside
    if not state.initialized:
        init()
    return current.runtime()


def _worker_link():
    """The runtime of a worker process (``launch/worker.py``), or None elsewhere: there the
    session is its rank's, already running."""
    rt = current.runtime_or_none()
    return rt if getattr(rt, "in_worker_process", False) else None


def initialized():
    return state.initialized or _worker_link() is not None


def init(declared=None, num_cpus=None, object_store_memory=None, namespace=None):
    """Start (or attach to) the job; see ``hpcray.init`` for the arguments.

    Raises:
        ConfigError: a knob or ``object_store_memory`` does not parse.
        ValueError: ``object_store_memory`` differs from the launched job's stores.
    """
    declared = declared or {}
    if _worker_link() is not None:
        return _worker_link()                  # inside a task: the job runs already
    rt = current.runtime_or_none()
    created = rt is None
    if created:
        if launched_by_mpi():
            _join_launched_job(declared)
        else:
            config = Config.load()
            workers = int(num_cpus) if num_cpus else config.num_workers
            if workers < 1:
                raise ValueError("the embedded default needs at least one worker (num_cpus >= 1)")
            memory = None
            if object_store_memory is not None:
                memory = parse_knob("object_store_memory", object_store_memory,
                                    "object_store_memory")
            embedded.start(config, workers, declared, memory)
            state.mode = EMBEDDED
    elif state.mode == LAUNCHED:
        if object_store_memory is not None and rt.store is not None:
            if parse_knob("object_store_memory", object_store_memory,
                          "object_store_memory") != rt.store.capacity:
                raise ValueError(
                    f"object_store_memory={object_store_memory!r}: this job's stores already "
                    f"exist ({rt.store.capacity:,} bytes per node); size them with "
                    f"'python -m hpcray --object-store-memory ...' or HPCRAY_OBJECT_STORE_MEMORY")
        if declared and rt.head is not None:
            rt.head.reset_session(_capacities_with(rt, declared))
    rt = current.runtime()
    state.initialized = True
    state.runtime = rt
    state.namespace = namespace
    if rt.directory is not None:
        rt.directory.default_namespace = namespace or "default"
    if state.mode != LAUNCHED or created:             # we run the script's process: handle
        preemption.install_on_head(rt.config)         # Slurm's stop signals here
        atexit.register(preemption.at_exit(current.runtime_or_none))
    return rt


def _capacities_with(rt, declared):
    return resources.with_declared(rt.job.detected_capacities, declared)


def _join_launched_job(declared):
    """``mpiexec python script.py`` without ``-m hpcray``: rank 0 continues, others serve."""
    MPI = import_mpi()
    config = Config.load()
    comm = MPI.COMM_WORLD.Dup()
    rt = start_runtime(comm, config, declared, on_exit=worker_exit_hard)
    state.mode = LAUNCHED
    if rt.rank != 0:
        preemption.ignore_on_worker()
        serve(rt)
        rt.lifecycle.close()
        finalize(rt, MPI)
        sys.exit(0)
    with rt.lock:
        rt.progress.enter_user_code()         # the driver's script
    atexit.register(lambda: finish_launched(
        rt, 1 if getattr(sys, "last_value", None) is not None else 0))


def declare(num_cpus=None, num_gpus=None, resources=None):
    return declared_resources(num_cpus, num_gpus, resources)


def shutdown():
    """End the current session; the embedded default stops its workers."""
    rt = current.runtime_or_none()
    state.runtime = None
    if rt is None or not state.initialized and state.mode != EMBEDDED:
        state.initialized = False
        return
    if state.mode == EMBEDDED:
        embedded.stop()
    elif rt.head is not None:
        rt.head.reset_session()
    state.initialized = False


def describe():
    """What ``init()`` returns: a dict describing the job."""
    rt = current.runtime()
    return {"rank": rt.rank, "world_size": rt.job.size, "mode": state.mode,
            "node_id": rt.job.node_id(), "session": rt.progress.session}
