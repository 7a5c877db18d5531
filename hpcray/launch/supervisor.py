"""Each rank of ``python -m hpcray`` runs in a child of a small supervisor process.

The process ``mpirun``/``srun`` starts for a rank forks, before MPI is initialized (no MPI,
no threads yet), and the child becomes the rank; the supervisor only waits for it. This
decides what the launcher sees when a rank dies:

* a worker rank killed by a signal (SIGKILL, the OOM killer, a segfault) is a death the head
  handles (the job goes on without it): its supervisor exits 0 and says so on stderr, so
  ``srun`` returns the script's status instead of 137, and ``mpiexec -disable-auto-cleanup``
  (``hpcray run``) spares the survivors;
* the head's status is the job's: the supervisor of rank 0 exits with it (128 + signal if it
  was killed);
* the child runs in a session of its own: the SIGUSR1 that Hydra sends every rank's process
  group when one rank's launcher socket closes does not reach it (the supervisor ignores it);
  stop signals (SIGTERM, SIGINT, SIGUSR2, SIGHUP) are passed on;
* the child dies with its supervisor (``PR_SET_PDEATHSIG``): a job the launcher kills leaves
  no rank behind.

``HPCRAY_SUPERVISE=0`` runs the rank in the launcher's process itself.
"""
import ctypes
import os
import signal
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2, signal.SIGHUP)
_RANK_VARS = ("PMI_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def launcher_rank():
    """This process's rank as the launcher numbered it (before MPI), or None."""
    for name in _RANK_VARS:
        value = os.environ.get(name)
        if value is not None and value.isdigit():
            return int(value)
    return None


def supervise():
    """Fork the rank. Returns in the child (which then joins MPI); never returns in the
    supervisor, which exits with the status the child's end implies."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.setsid()                            # Hydra's SIGUSR1 to our group misses the rank
        _die_with(parent)
        return
    for signum in FORWARDED:
        signal.signal(signum, lambda number, frame: _forward(pid, number))
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    os._exit(exit_status(os.waitstatus_to_exitcode(status), launcher_rank()))


def exit_status(code, rank):
    """What the supervisor of ``rank`` exits with when its child ended with ``code``
    (negative: killed by that signal)."""
    if code >= 0:
        return code
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if rank == 0 or rank is None:
        sys.stderr.write(f"hpcray: the head (rank 0, host {os.uname().nodename}) was killed "
                         f"by {name}; the job ends\n")
        sys.stderr.flush()
        return 128 - code
    sys.stderr.write(f"hpcray: rank {rank} (host {os.uname().nodename}) was killed by {name}; "
                     f"the job goes on without it\n")
    sys.stderr.flush()
    return 0


def _forward(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _die_with(parent):
    """Ask the kernel to SIGKILL this process when its parent (the supervisor) dies."""
    try:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass
    if os.getppid() != parent:                 # it died before we asked
        os._exit(1)
