"""The rank's fork server.

A worker process must see the node's store at the address the rank sees it (MPICH maps the
store from a file it has already unlinked, so nothing else can open it), must not inherit the
rank's threads, locks or MPI connections, and must start in milliseconds. So each rank forks
one *zygote* right after its store exists and before it starts any thread; the zygote closes
every inherited file but its socket and stdio, leaves the rank's session (the launcher's
signals to the rank's process group are not for it), and forks a worker whenever the rank
asks, handing it the socket the rank passed along. It reports each worker's pid, and its exit
status once it ended. Zygote and workers get SIGKILL when their parent dies
(``PR_SET_PDEATHSIG``), so nothing outlives the rank; both only ever leave by ``os._exit``
(an interpreter exit would run mpi4py's ``MPI_Finalize`` on the inherited launcher socket).
"""
import ctypes
import os
import pickle
import select
import signal
import socket
import struct
import sys

PR_SET_PDEATHSIG = 1
_LENGTH = struct.Struct("<I")


def die_with_parent(parent_pid):
    """Get SIGKILL when the parent dies; leave now if it already did."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


def _close_inherited(keep):
    """Close every file descriptor but stdio and ``keep``."""
    keep = sorted(set(keep) | {0, 1, 2})
    low = 0
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


class Zygote:
    """The rank's side: ``spawn(setup)`` asks for a worker and returns the rank's end of its
    socket; :meth:`events` reads the zygote's reports (``("forked", pid)`` for each spawn,
    in order, and ``("exited", pid, status)``, ``status`` as ``os.waitstatus_to_exitcode``)."""

    def __init__(self, entry):
        """Fork the zygote now (the caller has no other thread yet). ``entry(sock, setup)``
        is a worker's life, run in the worker; it must end with ``os._exit``."""
        ours, theirs = socket.socketpair()
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:                           # the zygote
            try:
                ours.close()
                _zygote_main(theirs, parent, entry)
            finally:
                os._exit(0)
        theirs.close()
        self.pid = pid
        self.sock = ours
        self.inbox = bytearray()

    def fileno(self):
        return self.sock.fileno()

    def spawn(self, worker_sock, setup):
        """Ask for a worker that will talk over ``worker_sock`` (its end; closed here)."""
        data = pickle.dumps(setup, protocol=5)
        socket.send_fds(self.sock, [_LENGTH.pack(len(data)) + data], [worker_sock.fileno()])
        worker_sock.close()

    def events(self):
        """The zygote's reports that arrived (non-blocking); raises EOFError if it is gone."""
        while True:
            try:
                data = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                raise EOFError("the zygote is gone")
            self.inbox += data
        reports = []
        while len(self.inbox) >= 4:
            size = _LENGTH.unpack_from(self.inbox)[0]
            if len(self.inbox) < 4 + size:
                break
            reports.append(pickle.loads(bytes(self.inbox[4:4 + size])))
            del self.inbox[:4 + size]
        return reports

    def stop(self):
        """End the zygote (its workers get SIGKILL as it dies)."""
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ChildProcessError, ProcessLookupError, OSError):
            pass


def _send(sock, report):
    data = pickle.dumps(report, protocol=5)
    sock.sendall(_LENGTH.pack(len(data)) + data)


def _zygote_main(sock, parent, entry):
    os.setsid()                                # out of the rank's process group
    die_with_parent(parent)
    _close_inherited([sock.fileno()])
    # The zygote and its workers end with their rank, never on a signal meant for the job:
    # Slurm's SIGTERM (the rank's grace period covers running tasks), a launcher's SIGUSR1,
    # a terminal's SIGINT (the rank's cancel sends SIGINT to a worker on purpose).
    for number in (signal.SIGUSR2, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(number, signal.SIG_IGN)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    me = os.getpid()
    buffer = bytearray()
    pending_fds = []
    while True:
        try:
            ready, _, _ = select.select([sock, wake_read], [], [])
        except InterruptedError:
            ready = [wake_read]
        if wake_read in ready:
            try:
                os.read(wake_read, 4096)
            except BlockingIOError:
                pass
            _reap(sock)
        if sock in ready:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 16)
            except InterruptedError:
                continue
            if not data:
                os._exit(0)                    # the rank closed: its workers die with us
            buffer += data
            pending_fds += fds
            while len(buffer) >= 4 and len(buffer) >= 4 + _LENGTH.unpack_from(buffer)[0]:
                size = _LENGTH.unpack_from(buffer)[0]
                setup = pickle.loads(bytes(buffer[4:4 + size]))
                del buffer[:4 + size]
                worker_fd = pending_fds.pop(0)
                pid = os.fork()
                if pid == 0:
                    try:
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        os.close(wake_read)
                        os.close(wake_write)
                        sock.close()
                        for fd in pending_fds:
                            os.close(fd)
                        die_with_parent(me)
                        entry(socket.socket(fileno=worker_fd), setup)
                    finally:
                        os._exit(0)
                os.close(worker_fd)
                _send(sock, ("forked", pid))
            _reap(sock)


def _reap(sock):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, ("exited", pid, os.waitstatus_to_exitcode(status)))
