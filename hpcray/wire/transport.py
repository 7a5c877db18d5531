"""Point-to-point messaging between ranks, and the polling discipline that keeps idle ranks cool.

All MPI point-to-point traffic of the runtime goes through :class:`Transport`: non-blocking
pickled sends (a blocking send of a large message could deadlock two ranks sending to each
other), and non-blocking matched probes for receiving. Messages a rank sends to itself never
touch MPI. Callers hold the runtime's lock, so MPI is only ever entered by one thread at a time
(MPI is initialized with ``MPI_THREAD_MULTIPLE`` all the same: see ``launch/join.py``).

Every MPI message is an envelope ``(session, message)`` or ``(session, [message, ...])``: the
session the sender was in when it queued them (``messages.py`` says what the receiver does
with it). A change of session flushes the outbox first, so an envelope never mixes sessions.
"""
import os
import time
from collections import deque

from .messages import TAG


class Transport:
    """Messages to other ranks wait in a per-destination outbox until :meth:`flush`, which
    sends each destination's messages as one MPI message: a burst of task submissions or of
    results costs one send, not one each."""

    def __init__(self, comm, session=0):
        from mpi4py import MPI        # imported here: importing hpcray must not start MPI
        self.any_source = MPI.ANY_SOURCE
        self.comm = comm
        self.rank = comm.Get_rank()
        self.session = session      # stamped on every envelope
        self._in_flight = []        # (destination, isend request) not yet known complete
        self._to_self = deque()     # (session, message) sent to this rank itself
        self._outbox = {}           # destination rank -> [message, ...]
        self.queued = 0             # messages waiting in the outbox
        self.only_to = None         # once the job is ending: the one rank still written to
        self.dead = set()           # ranks never written to again (liveness: RANK_DEAD)

    def mark_dead(self, rank):
        """``rank`` died: drop what is queued for it and never send to it again (over TCP a
        send to a dead peer can crash the sender); its sends in flight are forgotten (they
        never complete)."""
        self.dead.add(rank)
        self.queued -= len(self._outbox.pop(rank, ()))
        self._in_flight = [(dest, request) for dest, request in self._in_flight
                           if dest != rank]

    def set_session(self, session):
        """From now on, messages belong to ``session`` (what is queued leaves first)."""
        self.flush()
        self.session = session

    def send(self, dest, message):
        if self.only_to is not None and dest != self.only_to or dest in self.dead:
            return                  # the job is ending (the peer may have freed its comm),
            #                         or the peer is dead
        if dest == self.rank:
            self._to_self.append((self.session, message))
            return
        box = self._outbox.get(dest)
        if box is None:
            self._outbox[dest] = [message]
        else:
            box.append(message)
        self.queued += 1

    def flush(self):
        """Send everything in the outbox."""
        if not self.queued:
            return
        outbox, self._outbox, self.queued = self._outbox, {}, 0
        isend = self.comm.isend
        session = self.session
        for dest, messages in outbox.items():
            request = isend((session, messages[0] if len(messages) == 1 else messages),
                            dest, TAG)
            if not request.Test():
                self._in_flight.append((dest, request))

    def poll(self, deliver, limit=256):
        """Receive up to ``limit`` envelopes, each handed to ``deliver(session, payload)``
        (``payload``: a message, or a list of them); return how many arrived."""
        if self._in_flight:
            self._in_flight = [item for item in self._in_flight if not item[1].Test()]
        handled = 0
        to_self = self._to_self
        while to_self and handled < limit:
            deliver(*to_self.popleft())
            handled += 1
        improbe = self.comm.improbe
        while handled < limit:
            message = improbe(self.any_source, TAG)
            if message is None:
                break
            deliver(*message.recv())
            handled += 1
        return handled

    def close_to_all_but(self, rank):
        """From now on, messages go to ``rank`` only (``-1``: to nobody). Once a rank said the
        job is over, a late message (an actor released by a handle dropped at exit) could reach
        a peer that has left, and MPICH refuses to free a communicator with one unreceived."""
        self.only_to = rank

    def drain(self, timeout):
        """Flush, then wait (bounded) until every send has left this rank."""
        self.flush()
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            self._in_flight = [item for item in self._in_flight if not item[1].Test()]
            time.sleep(0.0005)
        return not self._in_flight


class Backoff:
    """Poll hot for a moment after activity, then sleep longer and longer up to a ceiling.

    Latency of back-to-back work stays in microseconds, while a rank that has nothing to do
    sleeps (MPICH's blocking waits would spin a core at 100 %, fatal with 16 ranks on 2 cores).
    During the hot phase the rank yields the CPU between polls, so oversubscribed ranks share it.

    For the first ``settle`` seconds of a wait, sleeps stay short (``early_ceiling``): two
    ranks that each back off while waiting for the other could otherwise lock into a rhythm
    where every exchange waits out a long sleep on both sides (each sleep here costs at
    least ~100 us, often more under load). Only a rank idle for longer sleeps up to the
    full ``ceiling``, which bounds what an idle rank costs.
    """
    __slots__ = ("spin", "ceiling", "early_ceiling", "settle", "_idle_since", "_sleep")

    def __init__(self, spin, ceiling, early_ceiling=0.0002, settle=0.05):
        self.spin = spin
        self.ceiling = ceiling
        self.early_ceiling = min(early_ceiling, ceiling)
        self.settle = settle
        self.reset()

    def reset(self):
        self._idle_since = time.monotonic()
        self._sleep = 2e-5

    def pause(self):
        idle = time.monotonic() - self._idle_since
        if idle < self.spin:
            os.sched_yield()
            return
        time.sleep(self._sleep)
        ceiling = self.early_ceiling if idle < self.settle else self.ceiling
        self._sleep = min(self._sleep * 2, ceiling)
