"""The head's record of every actor: where it lives, its name, what it holds, whether it lives.

The head places each new actor (``ACTOR_CREATE``) on an executing rank with room for the
resources it asks for, spreading actors evenly (fewest actors first); an actor that fits the
job but not the ranks' free resources right now waits until an actor ends. It answers where
actors are (``ACTOR_LOOKUP``), owns the names of named actors (a duplicate name is an error,
``get_if_exists`` returns the one there is) and forwards kills and releases for actors that
were not placed yet. All methods run with the runtime lock held, on rank 0.
"""
from collections import deque

from . import job
from .actor_client import died
from .protocol import Msg
from .scheduler import fits

PENDING, ALIVE, DEAD = "PENDING_CREATION", "ALIVE", "DEAD"


class ActorRecord:
    __slots__ = ("spec", "rank", "state", "askers", "error", "kill_reason", "released")

    def __init__(self, spec):
        self.spec = spec
        self.rank = None
        self.state = PENDING
        self.askers = set()                    # ranks waiting to learn where it is
        self.error = None                      # error object once DEAD
        self.kill_reason = None
        self.released = False


class ActorDirectory:
    def __init__(self, rt):
        self.rt = rt
        self.records = {}                      # actor id -> ActorRecord
        self.names = {}                        # (namespace, name) -> actor id
        self.waiting = deque()                 # actor ids with no room yet
        self.unknown = {}                      # actor id -> ranks that asked before its CREATE
        self.held = {}                         # rank -> {resource: amount} held by actors
        self.count = {}                        # rank -> live actors on it
        self.groups = {}                       # collective group name -> members, readiness

    # ------------------------------------------------------------------ creation and placement
    def on_create(self, spec):
        if spec.session != self.rt.session:
            return
        record = self.records[spec.actor_id] = ActorRecord(spec)
        record.askers.add(spec.owner)
        record.askers.update(self.unknown.pop(spec.actor_id, ()))
        if not self._try_place(record):
            self.waiting.append(spec.actor_id)

    def _try_place(self, record):
        spec = record.spec
        rank = self._choose(spec.resources)
        if rank is None:
            return False
        record.rank = rank
        record.state = ALIVE
        held = self.held.setdefault(rank, {})
        for name, amount in spec.resources.items():
            held[name] = held.get(name, 0.0) + amount
        self.count[rank] = self.count.get(rank, 0) + 1
        if self.rt.scheduler is not None:      # tasks see what actors hold
            self.rt.scheduler.hold(rank, spec.resources, +1)
        send = self.rt.transport.send
        send(rank, (Msg.ACTOR_START, spec))
        for asker in record.askers:
            send(asker, (Msg.ACTOR_PLACED, spec.actor_id, rank, None))
        record.askers.clear()
        if record.kill_reason is not None:
            send(rank, (Msg.ACTOR_KILL, spec.actor_id, record.kill_reason))
        if record.released:
            send(rank, (Msg.ACTOR_RELEASE, spec.actor_id))
        return True

    def _choose(self, request):
        """The executing rank with room for ``request`` that hosts the fewest actors."""
        capacities = self.rt.capacities
        best, best_count = None, None
        for rank in self.rt.executors:
            capacity, held = capacities[rank], self.held.get(rank, {})
            if not fits(capacity, request):
                continue
            if any(amount and held.get(name, 0.0) + amount > capacity.get(name, 0.0) + 1e-9
                   for name, amount in request.items()):
                continue
            count = self.count.get(rank, 0)
            if best is None or count < best_count:
                best, best_count = rank, count
        return best

    # ------------------------------------------------------------------ questions
    def on_lookup(self, actor_id, requester):
        record = self.records.get(actor_id)
        if record is None:                     # its CREATE is still on the way
            self.unknown.setdefault(actor_id, set()).add(requester)
            return
        if record.state == ALIVE:
            self.rt.transport.send(requester, (Msg.ACTOR_PLACED, actor_id, record.rank, None))
        elif record.state == DEAD:
            self.rt.transport.send(requester, (Msg.ACTOR_PLACED, actor_id, None, record.error))
        else:
            record.askers.add(requester)

    def on_query(self, token, kind, payload, requester):
        try:
            answer = ("ok", getattr(self, "_query_" + kind)(*payload))
        except Exception as error:
            answer = ("error", error)
        self.rt.transport.send(requester, (Msg.REPLY, token, answer))

    def _query_create_named(self, spec, get_if_exists):
        """Register a named actor and create it, or return the live one of that name."""
        namespace = self._namespace(spec.namespace)
        key = (namespace, spec.name)
        existing = self.names.get(key)
        if existing is not None and self.records[existing].state != DEAD:
            if get_if_exists:
                return ("exists", self._describe(self.records[existing]))
            raise ValueError(f"the actor name {spec.name!r} (namespace {namespace!r}) is "
                             f"already taken by a live actor; pick another name, or pass "
                             f"get_if_exists=True to get that actor")
        spec.namespace = namespace
        self.names[key] = spec.actor_id
        self.on_create(spec)
        return ("created", None)

    def _query_get_actor(self, name, namespace):
        namespace = self._namespace(namespace)
        actor_id = self.names.get((namespace, name))
        if actor_id is None or self.records[actor_id].state == DEAD:
            raise ValueError(f"failed to look up actor with name {name!r} in namespace "
                             f"{namespace!r}: no live actor has that name")
        return self._describe(self.records[actor_id])

    def _query_list_actors(self):
        return [{"actor_id": f"{actor_id:016x}", "class_name": record.spec.class_name,
                 "state": record.state, "name": record.spec.name or "",
                 "namespace": record.spec.namespace, "rank": record.rank,
                 "is_detached": record.spec.detached}
                for actor_id, record in self.records.items()]

    # ------------------------------------------------------------------ collective groups
    def _query_declare_group(self, name, world_size, members):
        """``members``: {actor id: group rank} (``create_collective_group`` from the driver)."""
        group = self.groups.get(name)
        if group is not None and group["members"]:
            raise ValueError(f"a collective group named {name!r} already exists")
        self.groups[name] = {"world_size": world_size, "members": dict(members), "ready": set()}
        return None

    def _query_join_group(self, name, world_size, group_rank, actor_id):
        """A member joins from inside its actor (``init_collective_group``)."""
        group = self.groups.setdefault(name, {"world_size": world_size, "members": {},
                                              "ready": set()})
        if group["world_size"] != world_size:
            raise ValueError(f"collective group {name!r} has world_size "
                             f"{group['world_size']}, not {world_size}")
        taken = {rank: actor for actor, rank in group["members"].items()}
        if taken.get(group_rank, actor_id) != actor_id:
            raise ValueError(f"rank {group_rank} of collective group {name!r} is taken")
        group["members"][actor_id] = group_rank
        return None

    def _query_group_info(self, name, mpi_rank=None):
        """``(world_size, {group rank: (actor id, MPI rank)}, all ranks ready)`` once every
        member is known and placed, else None. ``mpi_rank`` reports that rank ready to build
        the group's communicator."""
        group = self.groups.get(name)
        if group is None:
            return None
        if mpi_rank is not None:
            group["ready"].add(mpi_rank)
        members = group["members"]
        if len(members) < group["world_size"]:
            return None
        placed = {}
        for actor_id, rank in members.items():
            record = self.records.get(actor_id)
            if record is None or record.rank is None:
                return None
            placed[rank] = (actor_id, record.rank)
        hosts = {host for _, host in placed.values()}
        return group["world_size"], placed, hosts <= group["ready"]

    def _query_drop_group(self, name):
        self.groups.pop(name, None)
        return None

    def _namespace(self, namespace):
        return namespace if namespace is not None else (job.state.namespace or "default")

    @staticmethod
    def _describe(record):
        spec = record.spec
        return (spec.actor_id, spec.class_name, spec.methods, spec.is_async)

    # ------------------------------------------------------------------ end of life
    def on_gone(self, actor_id, reason):
        record = self.records.get(actor_id)
        if record is None or record.state == DEAD:
            return
        rank = record.rank
        self._mark_dead(record, died(record.spec.class_name, actor_id, reason))
        held = self.held.get(rank, {})
        for name, amount in record.spec.resources.items():
            held[name] = held.get(name, 0.0) - amount
        self.count[rank] -= 1
        if self.rt.scheduler is not None:
            self.rt.scheduler.hold(rank, record.spec.resources, -1)
        self._place_waiting()

    def _mark_dead(self, record, error):
        record.state = DEAD
        record.error = error
        spec = record.spec
        if spec.name is not None and self.names.get((spec.namespace, spec.name)) == spec.actor_id:
            del self.names[(spec.namespace, spec.name)]
        for asker in record.askers:
            self.rt.transport.send(asker, (Msg.ACTOR_PLACED, spec.actor_id, None, error))
        record.askers.clear()
        spec.class_blob = spec.args_blob = None     # keep the record small

    def _place_waiting(self):
        still = deque()
        while self.waiting:
            actor_id = self.waiting.popleft()
            record = self.records.get(actor_id)
            if record is not None and record.state == PENDING and not self._try_place(record):
                still.append(actor_id)
        self.waiting = still

    def on_kill(self, actor_id, reason):
        """A kill for an actor whose rank the killer did not know: forward, or end it here."""
        record = self.records.get(actor_id)
        if record is None:
            return
        if record.state == ALIVE:
            self.rt.transport.send(record.rank, (Msg.ACTOR_KILL, actor_id, reason))
        elif record.state == PENDING:
            self._mark_dead(record, died(record.spec.class_name, actor_id, reason))

    def on_release(self, actor_id):
        record = self.records.get(actor_id)
        if record is None:
            return
        if record.state == ALIVE:
            self.rt.transport.send(record.rank, (Msg.ACTOR_RELEASE, actor_id))
        elif record.state == PENDING:
            self._mark_dead(record, died(record.spec.class_name, actor_id,
                                         "all handles to it are gone"))

    def forget(self):
        self.__init__(self.rt)
