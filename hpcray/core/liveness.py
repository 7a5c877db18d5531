"""Liveness: which ranks of the job are alive, and what every rank does when one dies.

MPI says nothing when a rank dies (shared/facts/mpi-failures: a receive from it pends
forever, a send to it over TCP may crash the sender), so hpcray watches for itself:

* every rank watches the processes of the other ranks of its host (``pidfd``, checked by the
  background thread every ``WATCH_INTERVAL``): a death there is seen within ~0.1 s and
  reported to the head (``RANK_LOST``), unless it is the head's, which ends the rank;
* ranks on other hosts than the head's send ``HEARTBEAT`` to the head, which answers each
  one: the head declares a rank lost that stayed silent for ``HPCRAY_LIVENESS_TIMEOUT``
  seconds, and a rank that hears nothing from the head for that long ends itself;
* the head alone declares a rank dead (``head/service.py``) and tells every live rank
  (``RANK_DEAD``): from then on no rank sends to it or waits on it; each role drops or redoes
  what involved it (:meth:`Liveness.on_rank_dead` calls the listeners: the owner retries its
  tasks, lookups of the objects it owned fail with OwnerDiedError, transfers from it are
  abandoned, its actors are gone...).
"""
import os
import select
import sys
import time

from ..wire import messages

WATCH_INTERVAL = 0.1       # seconds between two looks at the processes of this host's ranks
HEARTBEAT_INTERVAL = 0.5   # seconds between two heartbeats of a rank on another host


class Liveness:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``transport``, ``progress``
    and ``config`` (``liveness_timeout``). Roles add ``fn(rank)`` to ``dead_listeners``."""

    def __init__(self, lock, job, transport, progress, config):
        self.lock = lock
        self.job = job
        self.transport = transport
        self.progress = progress
        self.timeout = config.liveness_timeout
        self.dead = set()                      # ranks known dead (RANK_DEAD)
        self.dead_listeners = []
        self.reported = set()                  # ranks this rank reported lost
        self.heard = {}                        # rank -> when it last sent a heartbeat (head)
        self.head_heard = time.monotonic()     # when the head last answered (other hosts)
        self.next_watch = 0.0
        self.next_heartbeat = 0.0
        self.remote = job.host_of[job.rank] != job.host_of[0]
        self.watched = {}                      # rank -> pidfd (or pid) of a rank on this host
        for rank, pid in enumerate(job.pids):
            if rank != job.rank and pid and job.host_of[rank] == job.host:
                self.watched[rank] = _open(pid)
        if job.rank == 0:
            now = time.monotonic()
            self.heard = {rank: now for rank in range(job.size)
                          if job.host_of[rank] != job.host_of[0]}

    def is_dead(self, rank):
        return rank in self.dead

    # ------------------------------------------------------------------ watching (no lock)
    def check(self):
        """Look at this host's ranks and the heartbeats (background thread, lock not held)."""
        now = time.monotonic()
        if now >= self.next_watch:
            self.next_watch = now + WATCH_INTERVAL
            gone = [rank for rank in _exited(self.watched) if rank not in self.dead]
            if gone:
                with self.lock:
                    for rank in gone:
                        self._lost(rank, "its process exited")
        if self.remote and now >= self.next_heartbeat:
            self.next_heartbeat = now + HEARTBEAT_INTERVAL
            if now - self.head_heard > self.timeout:
                self._head_gone(f"it sent nothing for {self.timeout:g} s")
            with self.lock:
                self.transport.send(0, messages.heartbeat(self.job.rank))
                self.transport.flush()
        if self.job.rank == 0 and self.heard:
            silent = [rank for rank, last in self.heard.items()
                      if now - last > self.timeout and rank not in self.dead]
            if silent:
                with self.lock:
                    for rank in silent:
                        self._lost(rank, f"it sent no heartbeat for {self.timeout:g} s")

    def _lost(self, rank, how):
        """This rank saw ``rank`` die (lock held)."""
        self.watched.pop(rank, None)
        self.heard.pop(rank, None)
        if rank == 0:
            self._head_gone(how)
        if rank in self.reported:
            return
        self.reported.add(rank)
        self.transport.send(0, messages.rank_lost(rank, how))
        self.transport.flush()

    def _head_gone(self, how):
        """The head died: the job is over; say so and leave (the launcher ends the rest)."""
        sys.stdout.flush()
        sys.stderr.write(f"hpcray: rank {self.job.rank} (host {self.job.host}): the head "
                         f"(rank 0, host {self.job.host_of[0]}) is gone ({how}); the job "
                         f"ends\n")
        sys.stderr.flush()
        os._exit(1)

    # ------------------------------------------------------------------ messages (lock held)
    def on_heartbeat(self, rank):
        """HEARTBEAT: on the head, a rank on another host is alive (answer it); elsewhere,
        the head answered."""
        if self.job.rank == 0:
            if rank in self.heard:
                self.heard[rank] = time.monotonic()
                self.transport.send(rank, messages.heartbeat(0))
        else:
            self.head_heard = time.monotonic()

    def on_rank_dead(self, rank, how, tasks):
        """RANK_DEAD: the head declared ``rank`` dead. Never send to it or wait on it again."""
        if rank in self.dead:
            return
        self.dead.add(rank)
        self.watched.pop(rank, None)
        self.heard.pop(rank, None)
        if rank == self.job.rank:              # declared dead while alive (silent too long)
            sys.stderr.write(f"hpcray: rank {rank}: the head declared this rank dead "
                             f"({how}); it leaves the job\n")
            sys.stderr.flush()
            os._exit(1)
        self.transport.mark_dead(rank)
        for listener in self.dead_listeners:
            listener(rank, set(tasks))

    def forget(self):
        pass                                   # deaths outlive sessions


class _Pid:
    """A process watched by polling its pid (where ``pidfd_open`` is missing)."""
    __slots__ = ("pid",)

    def __init__(self, pid):
        self.pid = pid


def _open(pid):
    try:
        return os.pidfd_open(pid)              # readable once the process has exited
    except (AttributeError, OSError):
        return _Pid(pid)


def _exited(watched):
    """The ranks among ``watched`` whose process is gone."""
    if not watched:
        return []
    fds = {fd: rank for rank, fd in watched.items() if isinstance(fd, int)}
    gone = []
    if fds:
        try:
            readable, _, _ = select.select(list(fds), [], [], 0)
            gone = [fds[fd] for fd in readable]
        except (OSError, ValueError):
            pass
    for rank, fd in watched.items():
        if isinstance(fd, _Pid):
            import psutil
            try:
                if psutil.Process(fd.pid).status() == psutil.STATUS_ZOMBIE:
                    gone.append(rank)
            except psutil.NoSuchProcess:
                gone.append(rank)
    return gone
