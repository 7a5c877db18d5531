"""What a job exposes on the network: which transports the MPI library may use, chosen before
``MPI_Init``, and no copy kept of the launcher's listening sockets. Nothing listens on the
network for a job that never leaves its host, but the launcher's own port.

Left to itself, the MPI library of the pip wheel (MPICH over UCX) opens two TCP listeners in
every rank, one on 127.0.0.1 and one on the host's external address, even when every rank is
on one host and all traffic goes through shared memory. So when the launcher says that the
job is on one host, and the user chose no transport themselves, each rank tells UCX to use
shared memory and self only: ``UCX_TLS=self,posix,cma``. That is UCX's ``sm`` but for
``sysv``, whose System V segments UCX makes readable and writable by the user's group (mode
0660, seen in ``/proc/sysvipc/shm``); ``posix`` segments are 0600. A user who chose a
transport keeps it (the
tests' emulated network, ``UCX_TLS=tcp,self``, listens on every interface: UCX's TCP over the
loopback device alone, ``UCX_NET_DEVICES=lo``, finds no route between two ranks in the UCX of
the wheel). A job on several hosts is left as the site configured it.

Every rank of a job reads the same launcher variables, so they all choose alike (UCX needs
every peer to offer a transport the others have).

Hydra (``mpiexec``) listens on one port on every interface for its proxies to call back, and
binds it with no option for loopback; its proxies and the ranks inherit that socket (it is not
close-on-exec), as the embedded default's workers inherit the port of MPICH's singleton start.
No hpcray process ever accepts on them, so each closes its copies at start
(:func:`drop_launcher_sockets`): the ports stay open in the launcher only.
"""
import os
import sys

SHARED_MEMORY_ONLY = "self,posix,cma"
# A transport or netmod the user chose: theirs to keep.
USER_CHOICES = ("UCX_TLS", "MPIR_CVAR_CH4_NETMOD", "FI_PROVIDER")
CHOSEN = "HPCRAY_CHOSE_TRANSPORTS"     # the variables choose() set, until forget_choice()


# What a launcher (mpiexec, srun, ...) puts in every rank's environment.
LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def hosts_of_job(environ):
    """How many hosts the launcher put this job on: a number, or None if it does not say.

    * No launcher (``python script.py``): the embedded default spawns its workers on this
      host.
    * Hydra (``mpiexec``) gives every rank ``MPI_LOCALNRANKS`` (ranks on its host) and
      ``PMI_SIZE`` (ranks in all): one host when they are equal.
    * Slurm gives every task of ``srun`` ``SLURM_STEP_NUM_NODES``.
    """
    if not any(name in environ for name in LAUNCHER_VARS):
        return 1
    local, size = environ.get("MPI_LOCALNRANKS"), environ.get("PMI_SIZE")
    if local and size and local.isdigit() and size.isdigit():
        return 1 if local == size else 2
    nodes = environ.get("SLURM_STEP_NUM_NODES")
    if nodes and nodes.isdigit():
        return int(nodes)
    return None


def local_settings(environ):
    """The variables to set for this job (a dict; empty when nothing is to change)."""
    if hosts_of_job(environ) != 1 or any(name in environ for name in USER_CHOICES):
        return {}
    return {"UCX_TLS": SHARED_MEMORY_ONLY}


def choose(environ=None):
    """Set this process's transports before MPI starts (no effect once it has). The setting
    is marked (``CHOSEN``) so that :func:`forget_choice` can take it back once MPI has read
    it: the user's code (tasks, and the programs they start, an MPI solver on other nodes
    with ``srun`` say) sees the environment it was given."""
    environ = os.environ if environ is None else environ
    if "mpi4py.MPI" in sys.modules:
        return {}
    settings = local_settings(environ)
    if settings:
        environ.update(settings, **{CHOSEN: ",".join(sorted(settings))})
    return settings


def forget_choice(environ=None):
    """Take back what :func:`choose` set, once MPI is initialized (and, in the embedded
    driver, once its workers are spawned: they inherit it and forget it in turn)."""
    environ = os.environ if environ is None else environ
    for name in environ.pop(CHOSEN, "").split(","):
        if name:
            environ.pop(name, None)


def launcher_ports(processes):
    """The ports Hydra's processes name on their command lines: the control port its proxies
    connect to (``--control-port host:port``) and the singleton's (``-pmi_args port``)."""
    import psutil
    ports = set()
    for process in processes:
        try:
            argv = process.cmdline()
        except psutil.Error:
            continue
        for flag, value in zip(argv, argv[1:]):
            try:
                if flag == "--control-port":
                    ports.add(int(value.rsplit(":", 1)[1]))
                elif flag == "-pmi_args":
                    ports.add(int(value))
            except (ValueError, IndexError):
                pass
    return ports


_dropped = False                       # this process looked at its ancestors' ports already


def drop_launcher_sockets(children=False):
    """Close this process's copies of the launcher's listening sockets: those on a port a
    Hydra ancestor names (and, with ``children``, a Hydra child: the embedded driver's
    ``mpiexec``). Sockets of the user's own are never touched. Returns how many closed.
    The ancestors are looked at once per process (a rank forked by its supervisor after
    the look inherits its result)."""
    global _dropped
    if _dropped and not children:
        return 0
    _dropped = True
    import psutil
    me = psutil.Process()
    try:
        kin = me.parents() + (me.children() if children else [])
        ports = launcher_ports(kin)
        if not ports:
            return 0
        held = [conn.fd for conn in me.net_connections(kind="tcp")
                if conn.status == psutil.CONN_LISTEN and conn.laddr
                and conn.laddr.port in ports and conn.fd >= 0]
    except psutil.Error:
        return 0
    for fd in held:
        try:
            os.close(fd)
        except OSError:
            pass
    return len(held)
