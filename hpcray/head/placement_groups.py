"""Placement groups (Ray's gang scheduling): bundles of resources reserved on ranks, all or
none, and the tasks and actors that run in them.

How bundles map to the job: a bundle is placed on one executing rank, whose resources it
reserves for the group's life (the scheduler's ``hold``: other work no longer sees them); a
node is a host's ranks (or a simulated node of ``--ranks-per-node``). ``STRICT_PACK`` puts
every bundle on ranks of one node; ``PACK`` does if it can, else fills nodes one after
another; ``STRICT_SPREAD`` puts each bundle on a node of its own; ``SPREAD`` does if it
can, else goes round the nodes. A group that cannot be placed yet stays ``PENDING`` and is
tried again whenever reserved resources come back; one that could never be placed (a
bundle larger than any rank, more STRICT_SPREAD bundles than nodes) stays pending too, as
in Ray, and :meth:`create` says so in its answer.

Work in a group: a task (or actor) whose strategy names a group and a bundle (-1: any) runs
on that bundle's rank and uses the bundle's resources, not the rank's; it waits while the
group is pending or its bundle is full. Removing a group releases its reservations; tasks
still waiting fail, and its actors are ended (the directory does that).

Pure state (no MPI): the scheduler and the directory use it; ``tests/test_state_holders.py``
drives it.
"""
from collections import deque

from ..core.resources import fits

PENDING, CREATED, REMOVED = "PENDING", "CREATED", "REMOVED"
STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


class Group:
    """One placement group."""
    __slots__ = ("group_id", "bundles", "strategy", "name", "owner", "state", "ranks", "used",
                 "waiting", "detached")

    def __init__(self, group_id, bundles, strategy, name, owner, detached):
        self.group_id = group_id
        self.bundles = bundles                 # [{resource: amount}]
        self.strategy = strategy
        self.name = name
        self.owner = owner
        self.detached = detached
        self.state = PENDING
        self.ranks = None                      # bundle index -> rank, once placed
        self.used = [dict() for _ in bundles]  # bundle index -> resources taken by work
        self.waiting = deque()                 # task specs waiting for room in it


class PlacementGroups:
    """Collaborators: ``capacities()`` (``{rank: capacity}`` of the live executing ranks),
    ``held(rank)`` (what actors and groups reserve there), ``hold(rank, request, sign)``
    (reserve or give back) and ``node_of`` (rank -> node index)."""

    def __init__(self, capacities, held, hold, node_of):
        self.capacities = capacities
        self.held = held
        self.hold = hold
        self.node_of = node_of
        self.groups = {}                       # group id -> Group
        self.names = {}                        # name -> group id
        self.pending = deque()                 # ids of groups not placed yet, oldest first
        self._next = 0

    # ------------------------------------------------------------------ groups
    def create(self, bundles, strategy, name, owner, detached=False):
        """A new group (placed now if it fits); returns ``(group id, why it cannot be
        placed ever, or None)``.

        Raises:
            ValueError: no bundles, an empty or negative bundle, an unknown strategy, or a
                name a live group has.
        """
        if strategy not in STRATEGIES:
            raise ValueError(f"placement group strategy must be one of {', '.join(STRATEGIES)}, "
                             f"got {strategy!r}")
        if not bundles or not isinstance(bundles, (list, tuple)):
            raise ValueError("a placement group needs a non-empty list of bundles")
        clean = []
        for bundle in bundles:
            if not isinstance(bundle, dict) or not bundle or any(
                    not isinstance(v, (int, float)) or v < 0 for v in bundle.values()) \
                    or not any(bundle.values()):
                raise ValueError(f"each bundle must be a non-empty dict of positive amounts, "
                                 f"got {bundle!r}")
            clean.append({key: float(value) for key, value in bundle.items()})
        if name and name in self.names:
            raise ValueError(f"a placement group named {name!r} already exists")
        self._next += 1
        group = Group(self._next, clean, strategy, name or "", owner, detached)
        self.groups[group.group_id] = group
        if name:
            self.names[name] = group.group_id
        if not self._place(group):
            self.pending.append(group.group_id)
        return group.group_id, None if group.state == CREATED else self._never(group)

    def _never(self, group):
        """Why ``group`` could never be placed in this job, or None."""
        capacities = self.capacities()
        for bundle in group.bundles:
            if not any(fits(capacity, bundle) for capacity in capacities.values()):
                return f"bundle {bundle} fits no rank of this job"
        nodes = {self.node_of[rank] for rank in capacities}
        if group.strategy == "STRICT_SPREAD" and len(group.bundles) > len(nodes):
            return (f"STRICT_SPREAD needs {len(group.bundles)} nodes and the job has "
                    f"{len(nodes)}")
        return None

    def remove(self, group_id):
        """Remove a group: its reservations go back; returns the specs of the tasks that were
        waiting in it (they fail)."""
        group = self.groups.get(group_id)
        if group is None or group.state == REMOVED:
            return []
        if group.state == CREATED:
            for index, rank in enumerate(group.ranks):
                self.hold(rank, group.bundles[index], -1)
        else:
            self.pending.remove(group_id)
        group.state = REMOVED
        if self.names.get(group.name) == group_id:
            del self.names[group.name]
        waiting, group.waiting = list(group.waiting), deque()
        return waiting

    def retry(self):
        """Reserved resources came back: place the pending groups that fit now (oldest
        first); return those placed."""
        placed = []
        for group_id in list(self.pending):
            group = self.groups[group_id]
            if self._place(group):
                self.pending.remove(group_id)
                placed.append(group)
        return placed

    def _place(self, group):
        free = {rank: self._free(rank, capacity)
                for rank, capacity in self.capacities().items()}
        ranks = _assign(group.bundles, group.strategy, free, self.node_of)
        if ranks is None:
            return False
        for index, rank in enumerate(ranks):
            self.hold(rank, group.bundles[index], +1)
        group.ranks = ranks
        group.state = CREATED
        return True

    def _free(self, rank, capacity):
        held = self.held(rank) or {}
        return {name: amount - held.get(name, 0.0) for name, amount in capacity.items()}

    def on_rank_dead(self, rank):
        """A rank died: groups with a bundle there are pending again (their other
        reservations go back); return them."""
        again = []
        for group in self.groups.values():
            if group.state == CREATED and rank in group.ranks:
                for index, bundle_rank in enumerate(group.ranks):
                    if bundle_rank != rank:
                        self.hold(bundle_rank, group.bundles[index], -1)
                group.state, group.ranks = PENDING, None
                group.used = [dict() for _ in group.bundles]
                self.pending.append(group.group_id)
                again.append(group)
        return again

    # ------------------------------------------------------------------ work in groups
    def choose(self, group_id, bundle_index, request):
        """``(rank, bundle index)`` for work in a group now, ``None`` if it must wait, or a
        string saying why it never can."""
        group = self.groups.get(group_id)
        if group is None or group.state == REMOVED:
            return "its placement group was removed"
        if bundle_index >= len(group.bundles):
            return (f"bundle index {bundle_index} is out of range: the group has "
                    f"{len(group.bundles)} bundles")
        indices = range(len(group.bundles)) if bundle_index < 0 else [bundle_index]
        if not any(fits(group.bundles[i], request) for i in indices):
            return f"{request} does not fit in bundle(s) {[group.bundles[i] for i in indices]}"
        if group.state != CREATED:
            return None
        for index in indices:
            used = group.used[index]
            total = {name: used.get(name, 0.0) + amount for name, amount in request.items()}
            if fits(group.bundles[index], total):
                return group.ranks[index], index
        return None

    def charge(self, group_id, index, request, sign):
        """Work in bundle ``index`` took (+1) or gave back (-1) ``request``."""
        group = self.groups.get(group_id)
        if group is None or group.state != CREATED:
            return
        used = group.used[index]
        for name, amount in request.items():
            used[name] = used.get(name, 0.0) + sign * amount

    def wait(self, group_id, spec):
        self.groups[group_id].waiting.append(spec)

    # ------------------------------------------------------------------ questions
    def by_name(self, name):
        group_id = self.names.get(name)
        if group_id is None:
            raise ValueError(f"no placement group named {name!r}")
        return self.describe(group_id)

    def describe(self, group_id):
        """What ``placement_group_table`` shows of one group."""
        group = self.groups.get(group_id)
        if group is None:
            raise ValueError(f"no placement group {group_id}")
        return {"placement_group_id": group.group_id, "name": group.name,
                "strategy": group.strategy, "state": group.state,
                "bundles": {i: dict(b) for i, b in enumerate(group.bundles)},
                "bundles_to_rank": ({i: r for i, r in enumerate(group.ranks)}
                                    if group.ranks else {})}

    def table(self):
        return {group_id: self.describe(group_id) for group_id in self.groups}

    def forget(self):
        self.__init__(self.capacities, self.held, self.hold, self.node_of)


def _assign(bundles, strategy, free, node_of):
    """Ranks for ``bundles`` under ``strategy`` given each rank's ``free`` resources, or
    None. Greedy: the largest bundles first, each on the first rank that fits."""
    order = sorted(range(len(bundles)), key=lambda i: -sum(bundles[i].values()))
    nodes = {}
    for rank in sorted(free):
        nodes.setdefault(node_of[rank], []).append(rank)
    if strategy in ("STRICT_PACK", "PACK"):
        by_room = sorted(nodes.values(), key=lambda ranks: -sum(
            sum(free[r].values()) for r in ranks))
        for ranks in by_room:                  # all on one node, if one has room
            found = _fill(bundles, order, {r: dict(free[r]) for r in ranks}, ranks)
            if found is not None:
                return found
        if strategy == "STRICT_PACK":
            return None
        ranks = [r for group in by_room for r in group]
        return _fill(bundles, order, {r: dict(free[r]) for r in ranks}, ranks)
    # SPREAD, STRICT_SPREAD: one node each while nodes last
    room = {r: dict(free[r]) for r in free}
    result, used_nodes = [None] * len(bundles), set()
    for index in order:
        candidates = [r for r in sorted(room) if node_of[r] not in used_nodes
                      and fits(room[r], bundles[index])]
        if not candidates:
            if strategy == "STRICT_SPREAD":
                return None
            candidates = [r for r in sorted(room) if fits(room[r], bundles[index])]
            if not candidates:
                return None
        rank = candidates[0]
        used_nodes.add(node_of[rank])
        _take(room[rank], bundles[index])
        result[index] = rank
    return result


def _fill(bundles, order, room, ranks):
    result = [None] * len(bundles)
    for index in order:
        for rank in ranks:
            if fits(room[rank], bundles[index]):
                _take(room[rank], bundles[index])
                result[index] = rank
                break
        else:
            return None
    return result


def _take(room, bundle):
    for name, amount in bundle.items():
        room[name] = room.get(name, 0.0) - amount
