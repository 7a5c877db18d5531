"""Each node's load table: what every rank of the node has queued, in shared memory.

A rank placing a task it submitted reads the table (plain loads, no message, no MPI call) to
find the least-loaded rank of its own node with room (bottom-up scheduling, as in Ray's
design: the head only sees what a node cannot take). The memory monitors of the node's ranks
use it too, so that the node ends one task at a time, its newest (as Ray's monitor does).
"""
import numpy as np


class NodeLoad:
    """Load of the ranks of one node, in a shared-memory window they all map.

    Any rank of the node reads it (plain loads, no message, no MPI call) to place a task it
    submits. Every cell has a single writer, so plain stores suffice, no atomics:

    * ``own[r]``: tasks queued or running on rank ``r`` minus those blocked in ``get``
      (written by ``r``);
    * ``sent[s, t]``: tasks rank ``s`` has placed on rank ``t`` so far (written by ``s`` when
      it sends, so a burst of submissions spreads instead of piling onto one rank);
    * ``received[t, s]``: of those, how many ``t`` has taken in (written by ``t``).

    The load of ``t`` is ``own[t] + sum_s sent[s, t] - sum_s received[t, s]``. Reads may be a
    moment stale, which only makes a choice slightly less balanced.

    For the memory monitors (``workers/pool.py``), also written by ``r`` only:

    * ``newest[r]``: when rank ``r``'s newest retriable task started, and its newest task of
      any kind (``CLOCK_MONOTONIC`` nanoseconds, one clock for the whole host; 0: none);
    * ``ending[r]``: since when ``r`` is ending a task's worker process for the memory (0:
      it is not).
    """

    def __init__(self, node_comm, global_ranks, executors):
        from mpi4py import MPI
        self.node_comm = node_comm
        self.local_rank = node_comm.Get_rank()
        self.global_ranks = global_ranks       # node-local index -> job rank
        self.index_of = {rank: index for index, rank in enumerate(global_ranks)}
        ranks = node_comm.Get_size()
        itemsize = np.dtype(np.int64).itemsize
        cells = ranks * (1 + 2 * ranks + 3)
        size = itemsize * cells if self.local_rank == 0 else 0
        self.window = MPI.Win.Allocate_shared(size, itemsize, comm=node_comm)
        buffer, _ = self.window.Shared_query(0)
        table = np.ndarray(cells, dtype=np.int64, buffer=buffer)
        if self.local_rank == 0:
            table[:] = 0
        node_comm.Barrier()
        self.own = table[:ranks]
        self.sent = table[ranks:ranks + ranks * ranks].reshape(ranks, ranks)
        tail = ranks + 2 * ranks * ranks
        self.received = table[ranks + ranks * ranks:tail].reshape(ranks, ranks)
        self.newest = table[tail:tail + 2 * ranks].reshape(ranks, 2)
        self.ending = table[tail + 2 * ranks:]
        # Ranks of this node that execute tasks (the head only does when it is alone).
        self.candidates = np.array([i for i, r in enumerate(global_ranks) if r in executors],
                                   dtype=np.intp)

    def add(self, delta):
        """Change this rank's own load (a task arrived from the head, finished, blocked...)."""
        self.own[self.local_rank] += delta

    def placed(self, rank):
        """This rank sends a task to ``rank`` of its node: count it before it arrives."""
        self.sent[self.local_rank, self.index_of[rank]] += 1

    def taken_in(self, sender):
        """A task ``sender`` placed here arrived: it now counts in this rank's own load."""
        self.received[self.local_rank, self.index_of[sender]] += 1
        self.own[self.local_rank] += 1

    def loads(self):
        return self.own + self.sent.sum(axis=0) - self.received.sum(axis=1)

    def pick(self, limit, admits):
        """The least-loaded rank of this node that ``admits(rank)`` and holds fewer than
        ``limit`` tasks, or None."""
        candidates = self.candidates
        if not len(candidates):
            return None
        loads = self.loads()[candidates]
        for position in np.argsort(loads, kind="stable"):
            if loads[position] >= limit:
                return None
            rank = self.global_ranks[candidates[position]]
            if admits(rank):
                return rank
        return None

    # ------------------------------------------------------------------ memory monitors
    def publish_newest(self, retriable_ns, any_ns):
        """When this rank's newest retriable task, and newest task, started (0: none)."""
        self.newest[self.local_rank] = (retriable_ns, any_ns)

    def holds_newest(self):
        """Whether this rank runs the node's newest task (retriable ones first; ties go
        to the lowest rank), by what the ranks published."""
        newest = self.newest
        column = 0 if newest[:, 0].any() else 1
        values = newest[:, column]
        return bool(values[self.local_rank]) and int(values.argmax()) == self.local_rank

    def set_ending(self, since_ns):
        self.ending[self.local_rank] = since_ns

    def ending_elsewhere(self, now_ns, stale_ns):
        """Whether another rank of the node is ending a task for the memory (since less
        than ``stale_ns``: a rank that died meanwhile does not hold the others back)."""
        ending = self.ending.copy()
        ending[self.local_rank] = 0
        return bool(((ending > 0) & (now_ns - ending < stale_ns)).any())

    def close(self):
        if self.window is not None:
            self.own = self.sent = self.received = self.newest = self.ending = None
            self.window.Free()
            self.window = None
