"""The embedded default: ``python script.py`` with no launcher.

``init()`` makes the plain Python process rank 0 of a job of its own: it spawns worker
processes with ``MPI_Comm_spawn`` (``python -m hpcray.launch.spawned``), merges them with
itself into one intracommunicator, and everyone joins the runtime on it (``join.py``). At the
end of the script (or ``shutdown()``) the driver ends the workers and disconnects.
"""
import atexit
import os
import shutil
import sys
import threading
import time

from ..config import Config
from ..core import current
from . import network, preemption
from .join import exit_process, import_mpi, serve, shutdown_workers, start_runtime


class Spawned:
    """The driver's handles on the workers it spawned."""

    def __init__(self, intercomm, comm):
        self.intercomm = intercomm
        self.comm = comm


_spawned = None


def start(config, num_workers, declared, memory=None):
    """Spawn ``num_workers`` workers and join a runtime with them; return it."""
    global _spawned
    _find_launcher()
    MPI = import_mpi(spawns_workers=True)
    args = ["-m", "hpcray.launch.spawned", str(os.getpid())]
    intercomm = MPI.COMM_SELF.Spawn(sys.executable, args=args, maxprocs=num_workers)
    network.forget_choice()
    network.drop_launcher_sockets(children=True)      # the singleton's port, now unused
    comm = intercomm.Merge(high=False)
    comm.bcast((declared, memory), root=0)
    rt = start_runtime(comm, config, declared, head_apart=True, declared_memory=memory)
    _spawned = Spawned(intercomm, comm)
    with rt.lock:
        rt.progress.enter_user_code()         # the driver's script
    atexit.register(stop)
    return rt


def running():
    return _spawned is not None


def _find_launcher():
    """MPICH's singleton spawns through ``mpiexec`` found on PATH; without one it hangs. Use
    the one next to this Python (the pip wheel's) or fail with a clear error."""
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


def stop():
    """Driver side: end the workers and disconnect from them."""
    global _spawned
    rt = current.runtime_or_none()
    if rt is None or _spawned is None:
        return
    spawned, _spawned = _spawned, None
    clean = shutdown_workers(rt)
    if not clean:
        # Abort before closing: the window frees are collective, and a worker that never
        # said goodbye never joins them (the driver hung there forever).
        sys.stderr.write("hpcray: workers did not stop in time; aborting them\n")
        sys.stderr.flush()
        spawned.comm.Abort(1)
    rt.lifecycle.close()
    current.set_runtime(None)
    spawned.comm.Free()
    spawned.intercomm.Disconnect()
    _wait_for_exit(rt.head.worker_pids)


def _wait_for_exit(pids, timeout=5.0):
    """Let spawned workers finish exiting: if the driver leaves first, MPICH's singleton
    process manager goes with it and kills them mid-finalize, leaving their shared-memory
    segment behind in /dev/shm."""
    import psutil

    def alive(pid):
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE   # exited, not reaped
        except psutil.NoSuchProcess:
            return False
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.005)


def serve_spawned(driver_pid):
    """Worker side (``python -m hpcray.launch.spawned``): serve until the driver says stop."""
    MPI = import_mpi()
    parent = MPI.Comm.Get_parent()
    comm = parent.Merge(high=True)
    declared, memory = comm.bcast(None, root=0)

    def leave_now():
        comm.Free()
        parent.Disconnect()
        MPI.Finalize()
        exit_process(0)
    rt = start_runtime(comm, Config.load(), declared, on_exit=leave_now, head_apart=True,
                       declared_memory=memory)
    _watch_driver(rt, driver_pid)
    preemption.ignore_on_worker()
    serve(rt)
    rt.lifecycle.close()
    comm.Free()
    parent.Disconnect()


def _watch_driver(rt, driver_pid):
    """If the driver dies without a goodbye (SIGKILL), its workers must not linger forever."""
    import psutil

    def watch():
        while not rt.progress.stopping:
            time.sleep(0.5)
            if not psutil.pid_exists(driver_pid):
                sys.stderr.write(f"hpcray: driver process {driver_pid} is gone; worker "
                                 f"rank {rt.rank} exits\n")
                os._exit(1)
    threading.Thread(target=watch, name="hpcray-driver-watch", daemon=True).start()
