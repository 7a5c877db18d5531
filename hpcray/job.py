"""Joining the MPI job: the communicator, the node layout, each rank's resources, the runtime.

Three ways in:

* ``python -m hpcray script.py`` under ``mpirun``/``srun`` (``__main__``): every rank calls
  :func:`start_runtime` on ``COMM_WORLD``; rank 0 then runs the script.
* ``python script.py`` with no launcher (the embedded default): ``init()`` calls
  :func:`start_embedded`, which spawns workers with ``MPI_Comm_spawn`` and merges them with the
  driver into one intracommunicator; the workers run :func:`serve_spawned`.
* ``mpiexec -n N python script.py`` without ``-m hpcray``: ``init()`` notices the launcher's
  environment, and ranks other than 0 serve work inside ``init`` and exit when the job ends.
"""
import atexit
import faulthandler
import os
import signal
import socket
import sys
import threading
import time

_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


class JobState:
    """Process-wide facts the public API needs (set once the runtime starts)."""

    def __init__(self):
        self.mode = None            # "launched" (python -m hpcray / mpiexec) or "embedded"
        self.initialized = False    # init() was called (or implied) in the current session
        self.namespace = None
        self.spawned = None         # embedded: (intercomm, merged comm)
        self.job_id = os.getpid()


state = JobState()


def job_id():
    return state.job_id


def import_mpi():
    """Initialize MPI for several threads. The runtime still enters MPI one thread at a time
    (under its lock), which MPI_THREAD_SERIALIZED would allow; but with MPICH 5 at that level
    a non-blocking collective, polled by one thread while another thread makes other MPI calls,
    sometimes never completed (a standalone mpi4py test hung 8 times in 32 runs; none in 40
    at MPI_THREAD_MULTIPLE)."""
    import mpi4py
    mpi4py.rc.thread_level = "multiple"
    from mpi4py import MPI
    return MPI


def launched_by_mpi():
    return any(name in os.environ for name in _LAUNCHER_VARS)


def install_stack_dumps():
    """``kill -USR1 <pid>`` prints every thread's stack: the first tool for a job that hangs."""
    if threading.current_thread() is threading.main_thread():
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (AttributeError, ValueError, RuntimeError):
            pass


def _precise_sleeps():
    """Linux rounds short sleeps up by the thread's timer slack (50 us by default); pollers
    sleep for tens of microseconds, so ask for 1 us (best effort, Linux only)."""
    try:
        import ctypes
        PR_SET_TIMERSLACK = 29
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    except Exception:
        pass


def store_capacity(config, requested, stores_here):
    """Bytes of this node's object store: asked for, or 30 % of RAM shared by the host's
    stores, never more than /dev/shm can hold. Raises ValueError if what was asked cannot fit."""
    import shutil
    import psutil
    shm_free = shutil.disk_usage("/dev/shm").free
    requested = requested or config.object_store_memory
    if requested:
        if requested * stores_here > shm_free:
            raise ValueError(
                f"the object store asked for ({requested:,} bytes per node x {stores_here} "
                f"node(s) on {socket.gethostname()}) does not fit in /dev/shm ({shm_free:,} "
                f"bytes free); ask for less (--object-store-memory, HPCRAY_OBJECT_STORE_MEMORY) "
                f"or make /dev/shm larger")
        return requested
    share = int(0.3 * psutil.virtual_memory().total) // stores_here
    return max(min(share, int(0.9 * shm_free) // stores_here), 1 << 20)


def start_runtime(comm, config, declared=None, on_exit=None, head_apart=False,
                  declared_memory=None):
    """Collective over ``comm``: build this rank's Runtime and make it the process's runtime.

    ``head_apart``: the head cannot share memory with the others (a singleton driver and the
    workers it spawned are separate shared-memory domains for MPICH), so it is a node of its own.
    """
    from mpi4py import MPI
    from . import resources, runtime
    size = comm.Get_size()
    executors = max(size - 1, 1)
    executes = size == 1 or comm.Get_rank() != 0
    if head_apart:
        apart = comm.Split(0 if comm.Get_rank() == 0 else 1, key=comm.Get_rank())
        node_comm = apart.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
        apart.Free()
    else:
        node_comm = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    if config.ranks_per_node:
        # Simulated nodes: split each host's ranks into groups of K, each a node of its own.
        host_comm = node_comm
        node_comm = host_comm.Split(host_comm.Get_rank() // config.ranks_per_node,
                                    key=comm.Get_rank())
        host_comm.Free()
    leader = node_comm.bcast(comm.Get_rank(), root=0)
    everyone = comm.allgather((leader, socket.gethostname(), executes))
    placement = [(lead, hostname) for lead, hostname, _ in everyone]
    leaders = sorted({lead for lead, _ in placement})
    here = socket.gethostname()
    stores_here = len({lead for lead, host in placement if host == here})
    executing_here = sum(1 for _, host, runs in everyone if host == here and runs)
    # GPUs: the node's first rank looks once; each executing rank of the node takes its share
    # and pins it (CUDA_VISIBLE_DEVICES) before any user code runs.
    gpus = node_comm.bcast(resources.node_gpus() if node_comm.Get_rank() == 0 else None)
    executing = [r for r, runs in node_comm.allgather((comm.Get_rank(), executes)) if runs]
    mine = resources.deal_gpus(gpus, executing.index(comm.Get_rank()) if executes else None,
                               len(executing))
    resources.pin_gpus(mine)
    try:
        capacity, problem = store_capacity(config, declared_memory, stores_here), None
        offered = resources.rank_capacity(config, executes, executing_here, mine,
                                          capacity * stores_here)
    except ValueError as error:
        capacity, offered, problem = 0, {}, str(error)
    problems = [p for p in comm.allgather(problem) if p]
    if problems:                   # every rank learns it: nobody enters the collective alone
        node_comm.Free()
        raise ValueError(problems[0])
    detected = dict(enumerate(comm.allgather(offered)))
    capacities = {rank: resources.with_declared(offered, declared or {}, executors)
                  for rank, offered in detected.items()}
    tag = comm.bcast(f"{os.getpid():x}-{os.urandom(4).hex()}" if comm.Get_rank() == 0 else None)
    from .store import NodeStore
    store = NodeStore(node_comm, capacity, tag, leaders.index(leader))
    watch_parent = not (head_apart and comm.Get_rank() == 0)   # an embedded driver has no launcher
    rt = runtime.Runtime(comm, config, node_comm, leaders.index(leader), capacities, on_exit,
                         watch_parent, store)
    rt.job_tag = tag                                                # same on every rank
    rt.detected_capacities = detected                               # before init() declared any
    rt.node_of = [leaders.index(lead) for lead, _ in placement]     # rank -> node index
    rt.node_leaders = leaders                                       # node index -> its first rank
    if config.transfer == "rma" and len(leaders) > 1:
        rt.copies.open_window()
    rt.host_of = [hostname for _, hostname in placement]            # rank -> host name
    if rt.scheduler is not None:
        rt.scheduler.node_of = rt.node_of
    runtime._instance = rt
    install_stack_dumps()
    _precise_sleeps()
    return rt


def serve(rt):
    """A worker's life: serve tasks until the head says the job is over."""
    rt.serve()
    rt.leave()


def declared_resources(num_cpus=None, num_gpus=None, resources=None):
    declared = dict(resources or {})
    if num_gpus is not None:
        declared["GPU"] = num_gpus
    if num_cpus is not None:
        declared["CPU"] = num_cpus
    return declared


# ---------------------------------------------------------------- embedded default (spawn)
def start_embedded(config, num_workers, declared, memory=None):
    _find_launcher()
    MPI = import_mpi()
    args = ["-m", "hpcray._spawned", str(os.getpid())]
    intercomm = MPI.COMM_SELF.Spawn(sys.executable, args=args, maxprocs=num_workers)
    comm = intercomm.Merge(high=False)
    comm.bcast((declared, memory), root=0)
    rt = start_runtime(comm, config, declared, head_apart=True, declared_memory=memory)
    state.spawned = (intercomm, comm)
    state.mode = "embedded"
    rt.in_user_code = True
    atexit.register(stop_embedded)
    return rt


def _find_launcher():
    """MPICH's singleton spawns through ``mpiexec`` found on PATH; without one it hangs. Use
    the one next to this Python (the pip wheel's) or fail with a clear error."""
    import shutil
    if shutil.which("mpiexec"):
        return
    here = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(here, "mpiexec")):
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")
        return
    raise RuntimeError("hpcray.init() without a launcher starts its workers with MPI spawn, "
                       "which needs MPI's mpiexec on PATH (pip install mpich provides one "
                       "next to python); or run under mpirun/srun: "
                       "mpirun -n 4 python -m hpcray script.py")


def stop_embedded():
    """Driver side of the embedded default: end the workers and disconnect from them."""
    from . import runtime
    rt = runtime._instance
    if rt is None or state.spawned is None:
        return
    intercomm, comm = state.spawned
    clean = rt.shutdown_workers()
    rt.close()
    runtime._instance = None
    state.spawned = None
    state.initialized = False
    if not clean:
        sys.stderr.write("hpcray: workers did not stop in time; aborting them\n")
        comm.Abort(1)
    comm.Free()
    intercomm.Disconnect()
    _wait_for_exit(rt.worker_pids)


def _wait_for_exit(pids, timeout=5.0):
    """Let spawned workers finish exiting: if the driver leaves first, MPICH's singleton
    process manager goes with it and kills them mid-finalize, leaving their shared-memory
    segment behind in /dev/shm."""
    import psutil

    def running(pid):
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE   # exited, not reaped
        except psutil.NoSuchProcess:
            return False
    deadline = time.monotonic() + timeout
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.005)


def serve_spawned(driver_pid):
    """Worker side of the embedded default (``python -m hpcray._spawned``)."""
    MPI = import_mpi()
    from .config import Config
    parent = MPI.Comm.Get_parent()
    comm = parent.Merge(high=True)
    declared, memory = comm.bcast(None, root=0)

    def leave_now():
        comm.Free()
        parent.Disconnect()
        MPI.Finalize()
        exit_process(0)
    rt = start_runtime(comm, Config.from_env(), declared, on_exit=leave_now, head_apart=True,
                       declared_memory=memory)
    _watch_driver(rt, driver_pid)
    from .preemption import ignore_on_worker
    ignore_on_worker()
    serve(rt)
    rt.close()
    comm.Free()
    parent.Disconnect()


def _watch_driver(rt, driver_pid):
    """If the driver dies without a goodbye (SIGKILL), its workers must not linger forever."""
    import psutil

    def watch():
        while not rt.stopping:
            time.sleep(0.5)
            if not psutil.pid_exists(driver_pid):
                sys.stderr.write(f"hpcray: driver process {driver_pid} is gone; worker "
                                 f"rank {rt.rank} exits\n")
                os._exit(1)
    threading.Thread(target=watch, name="hpcray-driver-watch", daemon=True).start()


# ---------------------------------------------------------------- leaving a launched job
def finish_launched(rt, exit_code):
    """Head of a launched job: stop the workers, finalize, and exit with the script's status."""
    from mpi4py import MPI
    rt.in_user_code = False
    clean = rt.shutdown_workers()
    rt.close()
    sys.stdout.flush()
    sys.stderr.flush()
    if not clean:
        sys.stderr.write("hpcray: some workers did not stop within HPCRAY_SHUTDOWN_GRACE; "
                         "aborting the job\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(exit_code or 1)
    MPI.Finalize()
    return exit_code


def worker_exit_hard():
    """A worker whose task still runs when the job ends: finalize and leave at once."""
    from mpi4py import MPI
    MPI.Finalize()
    exit_process(0)


def exit_process(code):
    """End the process from any thread, running C-level exit handlers (unlike ``os._exit``).

    MPICH's launcher sometimes reports a rank that left through ``_exit`` as killed (status
    9), which would replace the script's exit status; libc's ``exit`` keeps it. ``PyDLL``
    keeps the GIL during the call, so no other Python thread runs while the process ends.
    """
    import ctypes
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.PyDLL(None).exit(code)


def host():
    return socket.gethostname()
