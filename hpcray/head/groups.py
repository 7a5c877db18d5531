"""The head's registry of collective groups (``hpcray.util.collective``): which actors are in
each group, with which group rank, and which MPI ranks are ready to build its communicator.

A state holder: answers go through ``send(rank, message)``, and where an actor lives comes
from ``placed_rank(actor_id)`` (the actor directory). All methods run with the runtime lock
held, on rank 0.
"""
from .directory import answer


class Group:
    __slots__ = ("world_size", "members", "ready", "broken")

    def __init__(self, world_size, members=None):
        self.world_size = world_size
        self.members = dict(members or {})     # actor id -> group rank
        self.ready = set()                     # MPI ranks ready to build the communicator
        self.broken = None                     # why it can never complete (a member died)


class GroupRegistry:
    def __init__(self, send, placed_rank):
        self.send = send
        self.placed_rank = placed_rank
        self.groups = {}                       # name -> Group

    def on_declare(self, token, name, world_size, members):
        """GROUP_DECLARE: ``members`` {actor id: group rank} (from the driver)."""
        answer(self.send, token, self.declare, name, world_size, members)

    def declare(self, name, world_size, members):
        group = self.groups.get(name)
        if group is not None and group.members:
            raise ValueError(f"a collective group named {name!r} already exists")
        self.groups[name] = Group(world_size, members)

    def on_join(self, token, name, world_size, group_rank, actor_id):
        """GROUP_JOIN: a member joins from inside its actor."""
        answer(self.send, token, self.join, name, world_size, group_rank, actor_id)

    def join(self, name, world_size, group_rank, actor_id):
        group = self.groups.setdefault(name, Group(world_size))
        if group.world_size != world_size:
            raise ValueError(f"collective group {name!r} has world_size {group.world_size}, "
                             f"not {world_size}")
        taken = {rank: actor for actor, rank in group.members.items()}
        if taken.get(group_rank, actor_id) != actor_id:
            raise ValueError(f"rank {group_rank} of collective group {name!r} is taken")
        group.members[actor_id] = group_rank

    def on_info(self, token, name, mpi_rank):
        """GROUP_INFO: ``(world_size, {group rank: (actor id, MPI rank)}, every rank ready)``
        once every member is known and placed, else None; ``mpi_rank`` (or None) reports
        that rank ready to build the group's communicator."""
        answer(self.send, token, self.info, name, mpi_rank)

    def info(self, name, mpi_rank=None):
        group = self.groups.get(name)
        if group is None:
            return None
        if group.broken:
            raise RuntimeError(f"collective group {name!r} is broken: {group.broken}")
        if mpi_rank is not None:
            group.ready.add(mpi_rank)
        if len(group.members) < group.world_size:
            return None
        placed = {}
        for actor_id, rank in group.members.items():
            host = self.placed_rank(actor_id)
            if host is None:
                return None
            placed[rank] = (actor_id, host)
        hosts = {host for _, host in placed.values()}
        return group.world_size, placed, hosts <= group.ready

    def on_drop(self, token, name):
        """GROUP_DROP: forget the group."""
        answer(self.send, token, self.drop, name)

    def drop(self, name):
        self.groups.pop(name, None)

    def on_rank_dead(self, rank, tasks):
        """``rank`` died: groups with a member there can never complete; they are dropped
        (their members fail: ``util/collective.py`` watches the dead ranks too)."""
        for name, group in list(self.groups.items()):
            if any(self.placed_rank(actor_id) == rank for actor_id in group.members):
                group.broken = f"a member's rank {rank} died"

    def forget(self):
        self.groups.clear()
