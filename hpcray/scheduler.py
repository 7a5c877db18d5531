"""Where tasks run: the head's global scheduler and each node's local choice.

Scheduling is bottom-up, as in Ray's design. A task submitted on a worker is placed on its own
node when some rank there has room (:class:`NodeLoad`, a load counter per rank kept in a small
MPI shared-memory window, read without any message); otherwise it spills to the head. The head
(:class:`GlobalScheduler`) places its own tasks and spilled ones on the least-loaded rank whose
logical resources fit, queueing them when every rank is full.

Resources are logical, as in Ray: a rank advertises ``{"CPU": c, "GPU": g, ...}``; a task's
request must fit a rank's capacity to run there. A rank executes one task at a time, so a rank
may hold up to ``capacity * (1 + prefetch)`` of requests, queued, to hide the round trip
between finishing one task and receiving the next.
"""
from collections import deque

import numpy as np
from .exceptions import ResourceError


def request_of(num_cpus=None, num_gpus=None, resources=None, default_cpus=1, memory=None):
    """Build a task's resource request ``{name: amount}`` from Ray-style options."""
    request = {"CPU": float(default_cpus if num_cpus is None else num_cpus)}
    if num_gpus:
        request["GPU"] = float(num_gpus)
    if memory:
        request["memory"] = float(memory)
    for name, amount in (resources or {}).items():
        if name in ("CPU", "GPU", "memory"):
            raise ValueError(f"use num_cpus/num_gpus/memory rather than "
                             f"resources={{{name!r}: ...}}")
        request[name] = float(amount)
    for name, amount in request.items():
        if amount < 0:
            raise ValueError(f"resource {name} must not be negative, got {amount}")
    return request


def fits(capacity, request):
    for name, amount in request.items():
        if amount and capacity.get(name, 0.0) < amount:
            return False
    return True


def check_feasible(capacities, request, what):
    """Raise ResourceError, naming the resource, if no rank could ever run this request."""
    if any(fits(capacity, request) for capacity in capacities.values()):
        return
    for name, amount in request.items():
        best = max((capacity.get(name, 0.0) for capacity in capacities.values()), default=0.0)
        if amount > best:
            raise ResourceError(
                f"{what} requests {name}={amount:g} but no rank of this job has that much "
                f"(the largest has {name}={best:g}); it could never run")
    raise ResourceError(f"{what} requests {request}, which no single rank of this job has")


class GlobalScheduler:
    """The head's view: capacity and current load of every executing rank, and a queue."""

    def __init__(self, capacities, prefetch, queue_seconds=0.002):
        self.capacities = dict(capacities)     # rank -> {resource: amount}
        self.prefetch = prefetch
        self.queue_seconds = queue_seconds
        self.depth = 1 + prefetch              # tasks a rank may hold per CPU it has
        self.mean_seconds = None               # moving average of task durations
        self.used = {rank: {} for rank in capacities}
        self.held = {}                         # rank -> resources its actors hold
        self.count = {rank: 0 for rank in capacities}
        self.assigned = {}                     # task_id -> (rank, request, blocked)
        self._fitting = {}                     # request -> (ranks, set of ranks) it fits
        self.freed = []                        # ranks that got a slot back since the last drain
        self.node_of = None                    # rank -> node index (set once nodes are known)
        self.queue = deque()                   # specs waiting for room

    def _admits(self, rank, request):
        capacity, used, held = self.capacities[rank], self.used[rank], self.held.get(rank)
        limit = self.depth
        cpus = capacity.get("CPU", 0.0) - (held.get("CPU", 0.0) if held else 0.0)
        if self.count[rank] >= max(cpus, 1.0) * limit:
            return False
        for name, amount in request.items():
            if amount:
                free = capacity.get(name, 0.0) - (held.get(name, 0.0) if held else 0.0)
                if used.get(name, 0.0) + amount > free * limit:
                    return False
        return True

    def hold(self, rank, request, sign):
        """An actor on ``rank`` holds ``request`` for its life (+1) or released it (-1)."""
        held = self.held.setdefault(rank, {})
        for name, amount in request.items():
            held[name] = held.get(name, 0.0) + sign * amount
        if sign < 0:
            self.freed.append(rank)

    def _load(self, rank):
        cpus = self.capacities[rank].get("CPU", 0.0) or 1.0
        return (self.used[rank].get("CPU", 0.0) / cpus, self.count[rank])

    def place(self, spec):
        """Return the rank to run ``spec`` on, or None after queueing it."""
        if not self.queue:
            rank = self._choose(spec.resources, spec.node_hint)
            if rank is not None:
                self._assign(spec, rank)
                return rank
        self.queue.append(spec)
        return None

    def _fitting_ranks(self, request):
        key = tuple(request.items())
        ranks = self._fitting.get(key)
        if ranks is None:
            ranks = [r for r, c in self.capacities.items() if fits(c, request)]
            ranks = self._fitting[key] = (ranks, set(ranks))
        return ranks

    def _choose(self, request, node_hint=None):
        """The least-loaded admissible rank; on ``node_hint``'s node if one has room there."""
        ranks = self._fitting_ranks(request)[0]
        if node_hint is not None and self.node_of is not None:
            here = [rank for rank in ranks if self.node_of[rank] == node_hint]
            rank = self._least_loaded(here, request)
            if rank is not None:
                return rank
        return self._least_loaded(ranks, request)

    def _least_loaded(self, ranks, request):
        best, best_load = None, None
        for rank in ranks:
            if self._admits(rank, request):
                load = self._load(rank)
                if best is None or load < best_load:
                    best, best_load = rank, load
                    if load[1] == 0:
                        break                  # an idle rank: nothing can beat it
        return best

    def _assign(self, spec, rank):
        self.assigned[spec.task_id] = [rank, spec.resources, False]
        self._charge(rank, spec.resources, +1)
        self.count[rank] += 1

    def _charge(self, rank, request, sign):
        used = self.used[rank]
        for name, amount in request.items():
            used[name] = used.get(name, 0.0) + sign * amount

    def on_done(self, task_id, seconds=None):
        """Free the task's slot; return ``[(rank, spec), ...]`` of queued tasks that now fit.

        ``seconds`` (how long the task ran) adapts the queue depth: short tasks are queued
        deeper on each rank, about ``queue_seconds`` of work, so ranks never wait for the head;
        long tasks only ``1 + prefetch`` deep, so one slow rank does not hoard work.
        """
        if seconds is not None:
            mean = self.mean_seconds
            mean = seconds if mean is None else 0.9 * mean + 0.1 * seconds
            self.mean_seconds = mean
            self.depth = max(1 + self.prefetch, min(64, int(self.queue_seconds / max(mean, 1e-6))))
        entry = self.assigned.pop(task_id, None)
        if entry is None:
            return
        rank, request, blocked = entry
        if not blocked:
            self._charge(rank, request, -1)
            self.count[rank] -= 1
            self.freed.append(rank)

    def on_blocked(self, task_id, blocked):
        """A task waits in ``get``: its resources are lent to other tasks until it resumes."""
        entry = self.assigned.get(task_id)
        if entry is None or entry[2] == blocked:
            return []
        entry[2] = blocked
        self._charge(entry[0], entry[1], -1 if blocked else +1)
        self.count[entry[0]] += -1 if blocked else +1
        if blocked:
            self.freed.append(entry[0])

    def drain(self):
        """Place queued tasks that fit now; return ``[(rank, spec), ...]``.

        Ranks that just freed a slot are tried first (no scan over all ranks): when results
        stream in, each finished task is replaced on its rank in O(1).
        """
        placed = []
        queue, freed = self.queue, self.freed
        while queue:
            spec = queue[0]
            rank = None
            fitting = self._fitting_ranks(spec.resources)[1]
            while freed:
                candidate = freed[-1]
                if candidate in fitting and self._admits(candidate, spec.resources):
                    rank = candidate
                    break
                freed.pop()
            if rank is None:
                rank = self._choose(spec.resources, spec.node_hint)
                if rank is None:
                    break
            queue.popleft()
            self._assign(spec, rank)
            placed.append((rank, spec))
        freed.clear()
        return placed

    def cancel_queued(self, task_id):
        """Remove a task still waiting at the head; return its spec, or None."""
        for spec in self.queue:
            if spec.task_id == task_id:
                self.queue.remove(spec)
                return spec
        return None

    def where(self, task_id):
        entry = self.assigned.get(task_id)
        return None if entry is None else entry[0]

    def reset(self, capacities):
        node_of = self.node_of
        self.__init__(capacities, self.prefetch, self.queue_seconds)
        self.node_of = node_of


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
    """

    def __init__(self, node_comm, global_ranks, executors):
        from mpi4py import MPI
        self.node_comm = node_comm
        self.local_rank = node_comm.Get_rank()
        self.global_ranks = global_ranks       # node-local index -> job rank
        self.index_of = {rank: index for index, rank in enumerate(global_ranks)}
        ranks = node_comm.Get_size()
        itemsize = np.dtype(np.int64).itemsize
        cells = ranks * (1 + 2 * ranks)
        size = itemsize * cells if self.local_rank == 0 else 0
        self.window = MPI.Win.Allocate_shared(size, itemsize, comm=node_comm)
        buffer, _ = self.window.Shared_query(0)
        table = np.ndarray(cells, dtype=np.int64, buffer=buffer)
        if self.local_rank == 0:
            table[:] = 0
        node_comm.Barrier()
        self.own = table[:ranks]
        self.sent = table[ranks:ranks + ranks * ranks].reshape(ranks, ranks)
        self.received = table[ranks + ranks * ranks:].reshape(ranks, ranks)
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

    def pick(self, limit, capacities, request):
        """The least-loaded rank of this node with room for ``request``, or None."""
        candidates = self.candidates
        if not len(candidates):
            return None
        loads = self.loads()[candidates]
        for position in np.argsort(loads, kind="stable"):
            if loads[position] >= limit:
                return None
            rank = self.global_ranks[candidates[position]]
            if fits(capacities[rank], request):
                return rank
        return None

    def close(self):
        if self.window is not None:
            self.own = self.sent = self.received = None
            self.window.Free()
            self.window = None
