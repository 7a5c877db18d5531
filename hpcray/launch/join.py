"""Joining the MPI job, and leaving it: the communicator, the node layout, each rank's
resources, the runtime and its roles.

Three ways in (``launch/session.py`` picks one):

* ``python -m hpcray script.py`` under ``mpirun``/``srun`` (``cli.py``): every rank calls
  :func:`start_runtime` on ``COMM_WORLD``; rank 0 then runs the script.
* ``python script.py`` with no launcher (the embedded default, ``embedded.py``): ``init()``
  spawns workers with ``MPI_Comm_spawn`` and merges them with the driver into one
  intracommunicator; everyone then calls :func:`start_runtime` on it.
* ``mpiexec -n N python script.py`` without ``-m hpcray``: ``init()`` notices the launcher's
  environment, and ranks other than 0 serve work inside ``init`` and exit when the job ends.
"""
import faulthandler
import gc
import os
import shutil
import signal
import socket
import sys
import threading
import traceback

from ..actors.host import attach as attach_actors
from ..core import current, output
from ..core.job_view import JobView
from ..core.runtime import Runtime
from ..exceptions import ConfigError
from ..head.service import attach as attach_head
from ..store.node_load import NodeLoad
from ..store.node_store import NodeStore
from ..workers.pool import attach as attach_workers
from ..workers.zygote import Zygote
from .worker import current_spec, worker_entry
from . import network, observing, preemption, resources



def import_mpi(spawns_workers=False):
    """Initialize MPI for several threads. The runtime still enters MPI one thread at a time
    (under its lock), which MPI_THREAD_SERIALIZED would allow; but with MPICH 5 at that level
    a non-blocking collective, polled by one thread while another thread makes other MPI calls,
    sometimes never completed (a standalone mpi4py test hung 8 times in 32 runs; none in 40
    at MPI_THREAD_MULTIPLE)."""
    import mpi4py
    mpi4py.rc.thread_level = "multiple"
    # A rank that died must not hang the others in MPI_Finalize (a barrier over the launcher
    # by default; see shared/facts/mpi-failures): finalize each rank on its own.
    os.environ.setdefault("MPIR_CVAR_NO_COLLECTIVE_FINALIZE", "1")
    network.choose()                           # no network listener for a one-host job
    network.drop_launcher_sockets()
    from mpi4py import MPI
    if not spawns_workers:                     # (the embedded driver's workers inherit it)
        network.forget_choice()
    return MPI


def launched_by_mpi():
    return any(name in os.environ for name in network.LAUNCHER_VARS)


def tune_garbage_collection(config):
    """Collect the young generation every ``HPCRAY_GC_THRESHOLD`` allocations instead of
    Python's 700 (the other generations keep their ratios): a task allocates a few dozen
    objects on its way through the runtime, and a collection that finds them all alive is
    pure cost. Worker processes inherit it from their zygote's fork."""
    if config.gc_threshold:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(config.gc_threshold, older, oldest)


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
    stores, never more than /dev/shm can hold. Raises ConfigError if what was asked cannot
    fit."""
    import psutil
    shm_free = shutil.disk_usage("/dev/shm").free
    requested = requested or config.object_store_memory
    if requested:
        if requested * stores_here > shm_free:
            raise ConfigError(
                f"the object store asked for ({requested:,} bytes per node x {stores_here} "
                f"node(s) on {socket.gethostname()}) does not fit in /dev/shm ({shm_free:,} "
                f"bytes free); ask for less (--object-store-memory, HPCRAY_OBJECT_STORE_MEMORY) "
                f"or make /dev/shm larger")
        return requested
    share = int(0.3 * psutil.virtual_memory().total) // stores_here
    return max(min(share, int(0.9 * shm_free) // stores_here), 1 << 20)


def unlink_shared_segments(comm, node_comm):
    """Remove the names of the shared-memory files this node's ranks have mapped so far
    (MPICH's segment of MPI_Init, the windows of the node's store and load table), once every
    rank of the job is past this point: a job that is killed then leaves nothing in /dev/shm
    (the memory lives on while mapped, and nobody opens these files by name any more). Only
    files mapped by this process (the node's first rank) are touched: never another job's."""
    comm.Barrier()
    if node_comm.Get_rank() != 0:
        return
    mapped = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/dev/shm/mpich_shm_"):
                    mapped.add(fields[5].strip())
    except OSError:
        pass
    for path in mapped:
        if not path.endswith("(deleted)"):
            try:
                os.unlink(path)
            except OSError:
                pass


def start_runtime(comm, config, declared=None, on_exit=None, head_apart=False,
                  declared_memory=None):
    """Collective over ``comm``: build this rank's runtime with its roles and make it the
    process's runtime.

    ``head_apart``: the head cannot share memory with the others (a singleton driver and the
    workers it spawned are separate shared-memory domains for MPICH), so it is a node of its own.

    Raises:
        ConfigError: a setting some rank found wrong (every rank raises it, together).
    """
    from mpi4py import MPI
    rank, size = comm.Get_rank(), comm.Get_size()
    executes = size == 1 or rank != 0
    tune_garbage_collection(config)
    if head_apart:
        apart = comm.Split(0 if rank == 0 else 1, key=rank)
        node_comm = apart.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
        apart.Free()
    else:
        node_comm = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
    if config.ranks_per_node:
        # Simulated nodes: split each host's ranks into groups of K, each a node of its own.
        host_comm = node_comm
        node_comm = host_comm.Split(host_comm.Get_rank() // config.ranks_per_node, key=rank)
        host_comm.Free()
    leader = node_comm.bcast(rank, root=0)
    everyone = comm.allgather((leader, socket.gethostname(), executes, os.getpid()))
    placement = [(lead, hostname) for lead, hostname, _, _ in everyone]
    leaders = sorted({lead for lead, _ in placement})
    here = socket.gethostname()
    stores_here = len({lead for lead, host in placement if host == here})
    executing_here = sum(1 for _, host, runs, _ in everyone if host == here and runs)
    # GPUs: the node's first rank looks once; each executing rank of the node takes its share
    # and pins it (CUDA_VISIBLE_DEVICES) before any user code runs.
    gpus = node_comm.bcast(resources.node_gpus(config) if node_comm.Get_rank() == 0 else None)
    executing = [r for r, runs in node_comm.allgather((rank, executes)) if runs]
    mine = resources.deal_gpus(gpus, executing.index(rank) if executes else None,
                               len(executing))
    resources.pin_gpus(mine)
    try:
        capacity, problem = store_capacity(config, declared_memory, stores_here), None
        offered = resources.rank_capacity(config, executes, executing_here, mine,
                                          capacity * stores_here)
        if offered:
            offered.update(resources.node_resources(resources.node_ip(),
                                                    leaders.index(leader) == 0))
    except ValueError as error:
        capacity, offered, problem = 0, {}, str(error)
    problems = [p for p in comm.allgather(problem) if p]
    if problems:                   # every rank learns it: nobody enters the collective alone
        node_comm.Free()
        raise ConfigError(problems[0])
    detected = dict(enumerate(comm.allgather(offered)))
    capacities = resources.with_declared(detected, declared or {})
    tag, job_dir = comm.bcast((f"{os.getpid():x}-{os.urandom(4).hex()}",
                               observing.make_job_dir(config)) if rank == 0 else None)
    node_index = leaders.index(leader)
    store = NodeStore(node_comm, capacity, tag, node_index, config.spill_dir)
    node_load = NodeLoad(node_comm, node_comm.allgather(rank),
                         set(range(1, size)) or {0})
    unlink_shared_segments(comm, node_comm)
    job = JobView(rank, size, node_index, [leaders.index(lead) for lead, _ in placement],
                  [hostname for _, hostname in placement], leaders, capacities, tag,
                  [pid for _, _, _, pid in everyone])
    job.detected_capacities = detected                 # before init() declared any
    job.job_dir = job_dir
    parent_pid = None if (head_apart and rank == 0) else os.getppid()  # an embedded driver
    rt = Runtime(comm, config, job, store, node_load, on_exit, parent_pid)  # has no launcher
    attach_actors(rt)
    if rank == 0:
        attach_head(rt)
        observing.attach(rt)
    ip = resources.node_ip()
    rt.events.probes.append(lambda: {"ip": ip})
    if config.transfer == "rma" and len(leaders) > 1:
        rt.copies.open_window()                        # collective over the job
    if executes and config.worker_processes:
        # Forked now, while this process has no other thread: the zygote and the workers
        # it forks see the node's store where this rank does (workers/zygote.py).
        attach_workers(rt, Zygote(worker_entry),
                       {"job": job, "config": config, "store_base": store.base,
                        "store_capacity": store.capacity, "node_index": node_index})
    attach_output(rt, executes)
    rt.progress.turn_hooks.append(rt.execution.send_metrics)   # (last: after the results)
    current.set_runtime(rt)
    rt.progress.start_background()
    if rank == 0 and job.executes:                     # alone, the head also executes tasks
        rt.execution.start_serving_thread()
    install_stack_dumps()
    _precise_sleeps()
    return rt


def attach_output(rt, executes):
    """What tasks and actors print goes to the driver (``core/output.py``): the rank's role
    (forwarding each turn, showing on the head), and, on a rank that runs tasks on its own
    threads, the capture of what they print (worker processes capture their own)."""
    role = output.Output(rt.job, rt.transport, rt.config)
    role.open_log()                            # (every rank has its log, if only empty)
    rt.attach("output", role)
    rt.progress.turn_hooks.append(role.forward)
    rt.lifecycle.before_bye.append(role.before_leaving)
    rt.lifecycle.at_close.append(role.close)
    if executes and not rt.config.worker_processes:
        output.capture(False, current_spec)


def serve(rt):
    """A worker's life: serve tasks until the head says the job is over, then leave."""
    rt.execution.serve()
    rt.lifecycle.leave()


def declared_resources(num_cpus=None, num_gpus=None, resources=None):
    declared = dict(resources or {})
    if num_gpus is not None:
        declared["GPU"] = num_gpus
    if num_cpus is not None:
        declared["CPU"] = num_cpus
    return declared


# ---------------------------------------------------------------- leaving a launched job
def finish_launched(rt, exit_code):
    """Head of a launched job: stop the workers, finalize, and exit with the script's status."""
    from mpi4py import MPI
    with rt.lock:
        rt.progress.leave_user_code()
    clean = shutdown_workers(rt, exit_code)
    sys.stdout.flush()
    sys.stderr.flush()
    if not clean:
        # Abort before closing: the window frees are collective, and a worker that never
        # said goodbye never joins them (the head hung there, with the other ranks).
        sys.stderr.write("hpcray: some workers did not stop within HPCRAY_SHUTDOWN_GRACE; "
                         "aborting the job\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(exit_code or 1)
    rt.lifecycle.close()
    current.set_runtime(None)
    return finalize(rt, MPI, exit_code)


def finalize(rt, MPI, code=0):
    """Finalize MPI and return ``code``; when a rank of the job died, end the process at once
    with ``code`` instead (over TCP MPI_Finalize aborts when a peer is dead; see
    shared/facts/mpi-failures)."""
    if rt.liveness.dead:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    MPI.Finalize()
    return code


def shutdown_workers(rt, exit_status=None):
    """The head ends the job's workers; False (the caller aborts the job) if some did not say
    goodbye in time, or if ending them raised: the other ranks would wait for a SHUTDOWN or
    a collective forever. Then the job directory gets its final snapshot and report, for
    ``exit_status`` (None: 1 if the script ended with an uncaught exception, else 0)."""
    try:
        clean = rt.head.shutdown_workers(report_abandoned=preemption.received() is None)
    except BaseException:
        traceback.print_exc()
        clean = False
    if exit_status is None:
        exit_status = 1 if getattr(sys, "last_value", None) is not None else 0
    try:
        observing.finish(rt, exit_status)
    except Exception:                          # (the report is not worth a hung job)
        traceback.print_exc()
    return clean


def worker_exit_hard():
    """A worker whose task still runs when the job ends: finalize and leave at once."""
    from mpi4py import MPI
    rt = current.runtime_or_none()
    if rt is not None:
        finalize(rt, MPI)
    else:
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
