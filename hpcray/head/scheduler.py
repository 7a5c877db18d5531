"""The head's global scheduler: which rank runs each task the head places.

Scheduling is bottom-up, as in Ray's design. A task submitted on a worker is placed on its own
node when some rank there has room (``core/submission.NodePlacement``, reading the node's load
table); otherwise it spills to the head. The head places its own tasks and spilled ones here:
on the least-loaded rank whose logical resources fit, queueing them when every rank is full.

Resources are logical, as in Ray: a rank advertises ``{"CPU": c, "GPU": g, ...}``; a task's
request must fit a rank's capacity to run there. A rank may hold up to ``capacity * depth`` of
requests, queued, to hide the round trip between finishing one task and receiving the next.
A rank whose queued tasks found no room for a while (a long task holds it) gives them back
(:meth:`take_back`); they go elsewhere, and the rank is *stalled*: it gets no more than it
runs at once until one of its tasks is done.

Scheduling strategies (a spec's ``strategy``, Ray's meanings): the default above; ``SPREAD``
takes the ranks in turn, one node after another, so that consecutive tasks land on different
nodes; a node affinity places the task on that node only, and waits there for room (in a
queue of that node's, so that it holds up no other task). An affinity that can never be met
(no such node, or it died, or none of its ranks could run the task) is dropped when soft, else
the task is *unschedulable*: :attr:`unschedulable` collects ``(spec, reason)`` for the
service to fail it. A task that no live rank could ever run is *infeasible*: it waits apart
(:attr:`infeasible`, as Ray keeps such tasks pending), holding up no other task.

Pure state (no MPI): ``head/service.py`` drives it; ``tests/test_state_holders.py`` too.
"""
from collections import deque

from ..core.resources import add_up, fits
from ..wire.specs import PLACEMENT_GROUP, SPREAD


def unreachable(node, runs_tasks):
    """Why an affinity to ``node`` can never be met (``runs_tasks``: some live rank of it
    runs tasks)."""
    if node < 0:
        return "no node of this job has the node id it asks for"
    if not runs_tasks:
        return f"node {node} has died (or runs no tasks)"
    return f"no rank of node {node} has the resources it asks for"


class Assignment:
    """Where the head sent a task: the rank, what it asked for, whether it waits in get, and
    the placement group bundle it uses (``(group id, index)``), if any."""
    __slots__ = ("rank", "request", "blocked", "bundle")

    def __init__(self, rank, request, bundle=None):
        self.rank = rank
        self.request = request
        self.blocked = False
        self.bundle = bundle


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
        self.assigned = {}                     # task_id -> Assignment
        self._fitting = {}                     # request -> (ranks, set of ranks) it fits
        self.freed = []                        # ranks that got a slot back since the last drain
        self.node_of = None                    # rank -> node index (set once nodes are known)
        self.queue = deque()                   # specs waiting for room
        self.pinned = {}                       # node -> deque of specs with an affinity to it
        self.infeasible = []                   # specs no live rank could ever run
        self.unschedulable = []                # (spec, reason): fail them (the service does)
        self.stalled = set()                   # ranks that gave tasks back (see take_back)
        self._spread_order = None              # ranks, one node after another (SPREAD)
        self._spread_next = 0
        self.groups = None                     # placement_groups.PlacementGroups (service)
        self.groups_freed = set()              # groups whose bundles gave room back
        self.released = False                  # reserved resources came back (hold -1)

    def _admits(self, rank, request):
        capacity, used, held = self.capacities[rank], self.used[rank], self.held.get(rank)
        limit = 1 if rank in self.stalled else self.depth
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
            self.released = True

    def _load(self, rank):
        cpus = self.capacities[rank].get("CPU", 0.0) or 1.0
        return (self.used[rank].get("CPU", 0.0) / cpus, self.count[rank])

    def place(self, spec):
        """Return the rank to run ``spec`` on, or None after queueing it (or, when it can never
        be placed as its strategy requires, adding it to :attr:`unschedulable`)."""
        strategy = spec.strategy
        if strategy is not None and strategy != SPREAD:
            if strategy[0] == PLACEMENT_GROUP:
                return self._place_in_group(spec)
            return self._place_on_node(spec)
        if not self._fitting_ranks(spec.resources)[0]:
            self.infeasible.append(spec)
            return None
        if not self.queue:
            rank = self._pick(spec)
            if rank is not None:
                self._assign(spec, rank)
                return rank
        self.queue.append(spec)
        return None

    def _pick(self, spec, avoid=None):
        """The rank for a default or SPREAD task, or None."""
        if spec.strategy == SPREAD:
            return self._spread(spec.resources, avoid)
        return self._choose(spec.resources, spec.node_hint, avoid)

    def _place_on_node(self, spec):
        node, soft, spill, fail = spec.strategy
        ranks = self._node_ranks(node, spec.resources)
        if not ranks:
            if soft:
                spec.strategy = None           # (Ray: run anywhere)
                return self.place(spec)
            self.unschedulable.append((spec, self._why_not(node)))
            return None
        rank = self._least_loaded(ranks, spec.resources)
        if rank is not None:
            self._assign(spec, rank)
            return rank
        if spill:
            spec.strategy = None
            return self.place(spec)
        if fail:
            self.unschedulable.append((spec, f"node {node} has no room for it now "
                                             f"(_fail_on_unavailable)"))
            return None
        self.pinned.setdefault(node, deque()).append(spec)
        return None

    def _place_in_group(self, spec):
        """A task in a placement group: on its bundle's rank, charged to the bundle; it
        waits in the group while the group is pending or the bundle full."""
        group_id, bundle = spec.strategy[1], spec.strategy[2]
        choice = self.groups.choose(group_id, bundle, spec.resources)
        if isinstance(choice, str):
            self.unschedulable.append((spec, choice))
            return None
        if choice is None:
            self.groups.wait(group_id, spec)
            return None
        rank, index = choice
        self._assign_in_group(spec, rank, group_id, index)
        return rank

    def _assign_in_group(self, spec, rank, group_id, index):
        self.assigned[spec.task_id] = Assignment(rank, spec.resources, (group_id, index))
        self.groups.charge(group_id, index, spec.resources, +1)
        self.count[rank] += 1

    def _drain_groups(self, placed):
        """Place the tasks waiting in groups that were just placed or gave room back."""
        groups = self.groups
        if self.released and groups.pending:
            self.released = False
            self.groups_freed.update(group.group_id for group in groups.retry())
        for group_id in self.groups_freed:
            group = groups.groups.get(group_id)
            waiting = group.waiting if group is not None else ()
            while waiting:
                spec = waiting[0]
                choice = groups.choose(group_id, spec.strategy[2], spec.resources)
                if choice is None:
                    break
                waiting.popleft()
                if isinstance(choice, str):
                    self.unschedulable.append((spec, choice))
                    continue
                rank, index = choice
                self._assign_in_group(spec, rank, group_id, index)
                placed.append((rank, spec))
        self.groups_freed.clear()

    def _node_ranks(self, node, request):
        """The live ranks of ``node`` that could ever run ``request``."""
        if node < 0 or self.node_of is None:
            return []
        return [rank for rank in self._fitting_ranks(request)[0] if self.node_of[rank] == node]

    def _why_not(self, node):
        return unreachable(node, self.node_of is None or any(
            self.node_of[rank] == node for rank in self.capacities))

    def _spread(self, request, avoid=None):
        """SPREAD: the next admissible rank in turn, nodes interleaved."""
        order = self._spread_order
        if order is None:
            node_of = self.node_of or {}
            by_node = {}
            for rank in sorted(self.capacities):
                by_node.setdefault(node_of[rank] if node_of else 0, []).append(rank)
            columns = list(by_node.values())
            order = [column[i] for i in range(max(map(len, columns), default=0))
                     for column in columns if i < len(column)]
            self._spread_order = order
        fitting = self._fitting_ranks(request)[1]
        count = len(order)
        for step in range(count):
            rank = order[(self._spread_next + step) % count]
            if rank in fitting and rank != avoid and self._admits(rank, request):
                self._spread_next = (self._spread_next + step + 1) % count
                return rank
        return None

    def _fitting_ranks(self, request):
        key = tuple(request.items())
        ranks = self._fitting.get(key)
        if ranks is None:
            ranks = [r for r, c in self.capacities.items() if fits(c, request)]
            ranks = self._fitting[key] = (ranks, set(ranks))
        return ranks

    def _choose(self, request, node_hint=None, avoid=None):
        """The least-loaded admissible rank (not ``avoid``); on ``node_hint``'s node if one
        has room there."""
        ranks = self._fitting_ranks(request)[0]
        if avoid is not None:
            ranks = [rank for rank in ranks if rank != avoid]
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
        self.assigned[spec.task_id] = Assignment(rank, spec.resources)
        self._charge(rank, spec.resources, +1)
        self.count[rank] += 1

    def _charge(self, rank, request, sign):
        used = self.used[rank]
        for name, amount in request.items():
            used[name] = used.get(name, 0.0) + sign * amount

    def on_done(self, task_id, seconds=None):
        """Free the task's slot (:meth:`drain` then places what fits).

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
        self.stalled.discard(entry.rank)       # it got through a task: no longer held up
        if not entry.blocked:
            self._release(entry)
            self.freed.append(entry.rank)

    def _release(self, entry):
        """An assigned task's resources come back: its bundle's, or its rank's."""
        if entry.bundle is not None:
            self.groups.charge(entry.bundle[0], entry.bundle[1], entry.request, -1)
            self.groups_freed.add(entry.bundle[0])
        else:
            self._charge(entry.rank, entry.request, -1)
        self.count[entry.rank] -= 1

    def take_back(self, rank, specs):
        """``rank`` gave back tasks that found no room there: the ones still assigned to it
        are placed on another rank, or queued first; it is stalled from now on. Returns
        ``[(rank, spec)]`` of those placed."""
        if rank not in self.capacities:
            return []                          # (it died meanwhile: its tasks run again)
        self.stalled.add(rank)
        placed, queued = [], []
        for spec in specs:
            if not self.unassign(spec.task_id, rank):
                continue                       # (cancelled, or its rank was declared dead)
            if spec.strategy is not None and spec.strategy != SPREAD:
                target = self._least_loaded([r for r in self._node_ranks(
                    spec.strategy[0], spec.resources) if r != rank], spec.resources)
            else:
                target = self._pick(spec, avoid=rank)
            if target is None:
                queued.append(spec)
            else:
                self._assign(spec, target)
                placed.append((target, spec))
        self.queue.extendleft(reversed(queued))    # they waited longest: first in line
        return placed

    def unassign(self, task_id, rank):
        """Forget that the task runs on ``rank`` (it never started there); False if it is
        not assigned there."""
        entry = self.assigned.get(task_id)
        if entry is None or entry.rank != rank:
            return False
        del self.assigned[task_id]
        if not entry.blocked:
            self._release(entry)
        return True

    def on_blocked(self, task_id, blocked):
        """A task waits in ``get``: its resources are lent to other tasks until it resumes."""
        entry = self.assigned.get(task_id)
        if entry is None or entry.blocked == blocked:
            return
        entry.blocked = blocked
        if entry.bundle is not None:
            self.groups.charge(entry.bundle[0], entry.bundle[1], entry.request,
                               -1 if blocked else +1)
            if blocked:
                self.groups_freed.add(entry.bundle[0])
        else:
            self._charge(entry.rank, entry.request, -1 if blocked else +1)
        self.count[entry.rank] += -1 if blocked else +1
        if blocked:
            self.freed.append(entry.rank)

    def drain(self):
        """Place queued tasks that fit now; return ``[(rank, spec), ...]``.

        Ranks that just freed a slot are tried first (no scan over all ranks): when results
        stream in, each finished task is replaced on its rank in O(1).
        """
        placed = []
        queue, freed = self.queue, self.freed
        if self.pinned:
            self._drain_pinned(placed)
        if self.groups is not None and (self.groups_freed or (self.released
                                                              and self.groups.pending)):
            self._drain_groups(placed)
        while queue:
            spec = queue[0]
            rank = None
            fitting = self._fitting_ranks(spec.resources)[1]
            while freed and spec.strategy is None:
                candidate = freed[-1]
                if candidate in fitting and self._admits(candidate, spec.resources):
                    rank = candidate
                    break
                freed.pop()
            if rank is None:
                rank = self._pick(spec)
                if rank is None:
                    if fitting:
                        break
                    self.infeasible.append(queue.popleft())   # (its ranks died)
                    continue
            queue.popleft()
            self._assign(spec, rank)
            placed.append((rank, spec))
        freed.clear()
        return placed

    def _drain_pinned(self, placed):
        """Place the tasks waiting for a node where a slot was freed, in their order."""
        node_of = self.node_of
        for node in {node_of[rank] for rank in self.freed if rank in self.capacities}:
            waiting = self.pinned.get(node)
            while waiting:
                spec = waiting[0]
                rank = self._least_loaded(self._node_ranks(node, spec.resources),
                                          spec.resources)
                if rank is None:
                    break
                waiting.popleft()
                self._assign(spec, rank)
                placed.append((rank, spec))
            if not waiting:
                self.pinned.pop(node, None)

    def cancel_queued(self, task_id):
        """Remove a task still waiting at the head; return its spec, or None."""
        waiting_in_groups = ([group.waiting for group in self.groups.groups.values()]
                             if self.groups is not None else [])
        for queue in [self.queue, self.infeasible, *self.pinned.values(), *waiting_in_groups]:
            for spec in queue:
                if spec.task_id == task_id:
                    queue.remove(spec)
                    return spec
        return None

    def waiting(self):
        """How many tasks wait at the head for room."""
        in_groups = (sum(len(group.waiting) for group in self.groups.groups.values())
                     if self.groups is not None else 0)
        return (len(self.queue) + len(self.infeasible) + in_groups
                + sum(len(queue) for queue in self.pinned.values()))

    def where(self, task_id):
        entry = self.assigned.get(task_id)
        return None if entry is None else entry.rank

    def remove_rank(self, rank):
        """``rank`` died: place nothing there again; return the ids of the tasks assigned to
        it (their owners run them again)."""
        lost = [task_id for task_id, entry in self.assigned.items() if entry.rank == rank]
        for task_id in lost:
            del self.assigned[task_id]
        for table in (self.capacities, self.used, self.count, self.held):
            table.pop(rank, None)
        self.stalled.discard(rank)
        self._fitting = {}
        self._spread_order = None
        self.freed = [r for r in self.freed if r != rank]
        if self.groups is not None:            # its groups are pending again: placed anew
            self.groups.on_rank_dead(rank)     # when room comes back
            self.released = True
        node = self.node_of[rank] if self.node_of is not None else None
        if node in self.pinned and not any(self.node_of[r] == node for r in self.capacities):
            for spec in self.pinned.pop(node):     # their node is gone: soft ones run
                if spec.strategy[1]:                # anywhere, the others cannot run
                    spec.strategy = None
                    self.queue.append(spec)
                else:
                    self.unschedulable.append((spec, self._why_not(node)))
        return lost

    def available(self):
        """Logical resources of the executing ranks not taken by the tasks placed here."""
        total = add_up(self.capacities.items(), self.node_of)
        for used in self.used.values():
            for name, amount in used.items():
                total[name] = max(total.get(name, 0.0) - amount, 0.0)
        return total

    def reset(self, capacities):
        node_of, groups = self.node_of, self.groups
        if groups is not None:
            groups.forget()                    # (a new session: no group lives on)
        gone = [rank for rank in capacities if rank not in self.capacities]
        self.__init__(capacities, self.prefetch, self.queue_seconds)
        self.node_of, self.groups = node_of, groups
        for rank in gone:                      # dead ranks stay dead in a new session
            self.remove_rank(rank)
