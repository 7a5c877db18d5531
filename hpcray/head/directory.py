"""The head's record of every actor: where it lives, its name, what it holds, whether it lives.

The head places each new actor (``ACTOR_CREATE``) on an executing rank with room for the
resources it asks for, spreading actors evenly (fewest actors first; with ``SPREAD``, fewest
on the node first); an actor that fits the job but not the ranks' free resources right now
waits until an actor ends. An actor with a node affinity goes to that node only (waiting
there for room), or, when that node can never host it, anywhere if the affinity is soft, else
nowhere: it is dead with ActorUnschedulableError. It answers where
actors are (``ACTOR_LOOKUP``), owns the names of named actors (a duplicate name is an error,
``get_if_exists`` returns the one there is) and forwards kills and releases for actors that
were not placed yet.

A state holder: every change comes through a handler, and what it must tell other ranks goes
through ``send(rank, message)``; ``tests/test_state_holders.py`` drives it with a fake
``send``. All methods run with the runtime lock held, on rank 0.
"""
from collections import deque

from ..core.resources import fits
from ..wire import messages, serialization
from ..wire.specs import PLACEMENT_GROUP, SPREAD, ActorState
from .scheduler import unreachable


def answer(send, token, question, *args):
    """Answer a request to the head: ``REPLY`` with what ``question(*args)`` returns, or with
    the exception it raises (the asker raises it)."""
    try:
        reply = messages.reply(token, True, question(*args))
    except Exception as error:
        reply = messages.reply(token, False, error)
    send(token[0], reply)


class ActorRecord:
    """What the head knows of one actor."""
    __slots__ = ("spec", "rank", "state", "askers", "error", "kill_reason", "released",
                 "bundle")

    def __init__(self, spec):
        self.spec = spec
        self.rank = None
        self.state = ActorState.PENDING_CREATION
        self.askers = set()                    # ranks waiting to learn where it is
        self.error = None                      # error object once DEAD
        self.kill_reason = None
        self.released = False
        self.bundle = None                     # (group id, index) it holds, in a group


class ActorDirectory:
    """Collaborators: ``send(rank, message)``, ``capacities()`` (``{rank: capacity}`` of the
    executing ranks, as the session declared them), ``hold(rank, request, sign)`` (the
    scheduler's view of what actors hold) and ``node_of`` (rank -> node index)."""

    def __init__(self, send, capacities, hold, node_of, placement_groups=None):
        self.send = send
        self.capacities = capacities
        self.hold = hold
        self.node_of = node_of
        self.placement_groups = placement_groups    # (head/placement_groups.py)
        self.default_namespace = "default"     # init(namespace=) sets it
        self.records = {}                      # actor id -> ActorRecord
        self.names = {}                        # (namespace, name) -> actor id
        self.waiting = deque()                 # actor ids with no room yet
        self.unknown = {}                      # actor id -> ranks that asked before its CREATE
        self.held = {}                         # rank -> {resource: amount} held by actors
        self.count = {}                        # rank -> live actors on it
        self.dead = set()                      # ranks that died: no actor goes there

    # ------------------------------------------------------------------ creation and placement
    def on_create(self, spec):
        """ACTOR_CREATE: place a new actor (or queue it until some rank has room)."""
        record = self.records[spec.actor_id] = ActorRecord(spec)
        record.askers.add(spec.owner)
        record.askers.update(self.unknown.pop(spec.actor_id, ()))
        if not self._try_place(record):
            self.waiting.append(spec.actor_id)

    def _try_place(self, record):
        """Place the actor now; False if it must wait for room. (An actor that can never be
        placed as its strategy requires is dead, and counts as placed.)"""
        spec = record.spec
        strategy = spec.strategy
        node = None
        if strategy is not None and strategy[0] == PLACEMENT_GROUP:
            return self._place_in_group(record)
        if strategy is not None and strategy != SPREAD:
            node, soft, spill, fail = strategy
            if self._choose(spec.resources, node, free_only=False) is None:
                if not soft:
                    self._unschedulable(record, self._why_not(node))
                    return True
                spec.strategy = node = None    # (Ray: anywhere)
        rank = self._choose(spec.resources, node, spread=strategy == SPREAD)
        if rank is None and node is not None:
            if spill:
                rank = self._choose(spec.resources)
            elif fail:
                self._unschedulable(record, f"node {node} has no room for it now "
                                            f"(_fail_on_unavailable)")
                return True
        if rank is None:
            return False
        held = self.held.setdefault(rank, {})
        for name, amount in spec.resources.items():
            held[name] = held.get(name, 0.0) + amount
        self.hold(rank, spec.resources, +1)    # tasks see what actors hold
        self._start(record, rank)
        return True

    def _place_in_group(self, record):
        """An actor in a placement group: on its bundle's rank, holding the bundle's
        resources (not the rank's); it waits while the group is pending or full."""
        spec = record.spec
        group_id, bundle = spec.strategy[1], spec.strategy[2]
        choice = self.placement_groups.choose(group_id, bundle, spec.resources)
        if isinstance(choice, str):
            self._unschedulable(record, choice)
            return True
        if choice is None:
            return False
        rank, index = choice
        record.bundle = (group_id, index)
        self.placement_groups.charge(group_id, index, spec.resources, +1)
        self._start(record, rank)
        return True

    def _start(self, record, rank):
        spec = record.spec
        record.rank = rank
        record.state = ActorState.ALIVE
        self.count[rank] = self.count.get(rank, 0) + 1
        send = self.send
        send(rank, messages.actor_start(spec))
        for asker in record.askers:
            send(asker, messages.actor_placed(spec.actor_id, rank, None))
        record.askers.clear()
        if record.kill_reason is not None:
            send(rank, messages.actor_kill(spec.actor_id, record.kill_reason, False))
        if record.released:
            send(rank, messages.actor_release(spec.actor_id))

    def _choose(self, request, node=None, spread=False, free_only=True):
        """The executing rank (of ``node``, if given) with room for ``request`` that hosts the
        fewest actors (``spread``: whose node hosts the fewest, first); with ``free_only``
        False, any rank that could ever host it."""
        capacities = self.capacities()
        if spread:
            on_node = {}
            for rank, count in self.count.items():
                on_node[self.node_of[rank]] = on_node.get(self.node_of[rank], 0) + count
        best, best_count = None, None
        for rank, capacity in capacities.items():
            if rank in self.dead or (node is not None and self.node_of[rank] != node):
                continue
            if not fits(capacity, request):
                continue
            if not free_only:
                return rank
            held = self.held.get(rank, {})
            if any(amount and held.get(name, 0.0) + amount > capacity.get(name, 0.0) + 1e-9
                   for name, amount in request.items()):
                continue
            count = self.count.get(rank, 0)
            if spread:
                count = (on_node.get(self.node_of[rank], 0), count)
            if best is None or count < best_count:
                best, best_count = rank, count
        return best

    def _why_not(self, node):
        return unreachable(node, any(self.node_of[rank] == node and rank not in self.dead
                                     for rank in self.capacities()))

    def _unschedulable(self, record, reason):
        spec = record.spec
        record.askers.add(spec.owner)          # (also when a restart finds no place)
        self._mark_dead(record, serialization.actor_unschedulable(spec.class_name,
                                                                  spec.actor_id, reason))

    # ------------------------------------------------------------------ questions
    def on_lookup(self, actor_id, requester):
        """ACTOR_LOOKUP: where is this actor? (answered now, or once it is placed)"""
        record = self.records.get(actor_id)
        if record is None:                     # its CREATE is still on the way
            self.unknown.setdefault(actor_id, set()).add(requester)
            return
        if record.state == ActorState.ALIVE:
            self.send(requester, messages.actor_placed(actor_id, record.rank, None))
        elif record.state == ActorState.DEAD:
            self.send(requester, messages.actor_placed(actor_id, None, record.error))
        else:
            record.askers.add(requester)

    def on_name_actor(self, token, spec, get_if_exists):
        """NAME_ACTOR: register a named actor and create it, or answer the live one."""
        answer(self.send, token, self._name_actor, spec, get_if_exists)

    def _name_actor(self, spec, get_if_exists):
        namespace = spec.namespace if spec.namespace is not None else self.default_namespace
        key = (namespace, spec.name)
        existing = self.names.get(key)
        if existing is not None and self.records[existing].state != ActorState.DEAD:
            if get_if_exists:
                return ("exists", self._describe(self.records[existing]))
            raise ValueError(f"the actor name {spec.name!r} (namespace {namespace!r}) is "
                             f"already taken by a live actor; pick another name, or pass "
                             f"get_if_exists=True to get that actor")
        spec.namespace = namespace
        self.names[key] = spec.actor_id
        self.on_create(spec)
        return ("created", None)

    def on_get_actor(self, token, name, namespace):
        """GET_ACTOR: the live actor of that name."""
        answer(self.send, token, self._get_actor, name, namespace)

    def _get_actor(self, name, namespace):
        namespace = namespace if namespace is not None else self.default_namespace
        actor_id = self.names.get((namespace, name))
        if actor_id is None or self.records[actor_id].state == ActorState.DEAD:
            raise ValueError(f"failed to look up actor with name {name!r} in namespace "
                             f"{namespace!r}: no live actor has that name")
        return self._describe(self.records[actor_id])

    def list_actors(self, with_errors=False):
        """Every actor of the session, as util.state.list_actors reports it (with
        ``with_errors``: pairs of that and the error record of a dead one, or None)."""
        listed = [({"actor_id": f"{actor_id:016x}", "class_name": record.spec.class_name,
                    "state": record.state, "name": record.spec.name or "",
                    "namespace": record.spec.namespace, "rank": record.rank,
                    "is_detached": record.spec.detached, "death_cause": None}, record.error)
                  for actor_id, record in self.records.items()]
        return listed if with_errors else [entry for entry, _ in listed]

    def placed_rank(self, actor_id):
        """The rank an actor was placed on, or None (unknown, or not placed yet)."""
        record = self.records.get(actor_id)
        return None if record is None else record.rank

    @staticmethod
    def _describe(record):
        spec = record.spec
        return (spec.actor_id, spec.class_name, spec.methods, spec.is_async)

    # ------------------------------------------------------------------ end of life
    def on_gone(self, actor_id, reason):
        """ACTOR_GONE: an actor ended on its rank; free its name and resources."""
        record = self.records.get(actor_id)
        if record is None or record.state == ActorState.DEAD:
            return
        rank = record.rank
        self._mark_dead(record, serialization.actor_died(record.spec.class_name, actor_id,
                                                         reason))
        self.count[rank] -= 1
        if record.bundle is not None:          # (its bundle's resources, not the rank's)
            self.placement_groups.charge(*record.bundle, record.spec.resources, -1)
        else:
            held = self.held.get(rank, {})
            for name, amount in record.spec.resources.items():
                held[name] = held.get(name, 0.0) - amount
            self.hold(rank, record.spec.resources, -1)
        self._place_waiting()

    def retry_waiting(self):
        """Room came back elsewhere (a placement group was placed): place waiting actors."""
        self._place_waiting()

    def end_group(self, group_id):
        """A placement group was removed: its actors end (those not placed yet are dead)."""
        for actor_id, record in self.records.items():
            strategy = record.spec.strategy
            if strategy is not None and strategy[0] == PLACEMENT_GROUP and \
                    strategy[1] == group_id and record.state != ActorState.DEAD:
                self.on_kill(actor_id, "its placement group was removed")

    def _mark_dead(self, record, error):
        record.state = ActorState.DEAD
        record.error = error
        spec = record.spec
        if spec.name is not None and self.names.get((spec.namespace, spec.name)) == spec.actor_id:
            del self.names[(spec.namespace, spec.name)]
        for asker in record.askers:
            self.send(asker, messages.actor_placed(spec.actor_id, None, error))
        record.askers.clear()
        spec.class_blob = spec.args_blob = None     # keep the record small

    def _place_waiting(self):
        still = deque()
        while self.waiting:
            actor_id = self.waiting.popleft()
            record = self.records.get(actor_id)
            if (record is not None and record.state == ActorState.PENDING_CREATION
                    and not self._try_place(record)):
                still.append(actor_id)
        self.waiting = still

    def on_rank_dead(self, rank, tasks):
        """``rank`` died: its actors that may restart (``max_restarts``, and their creator
        is alive) are placed again elsewhere, their __init__ to run again there; the others
        are dead (their owners learn it: ACTOR_PLACED with the error). No actor goes to
        ``rank`` again."""
        self.dead.add(rank)
        self.held.pop(rank, None)
        self.count.pop(rank, None)
        for actor_id, record in self.records.items():
            if record.rank == rank and record.state == ActorState.ALIVE:
                spec = record.spec
                if (spec.max_restarts and spec.owner != rank and record.kill_reason is None
                        and not record.released):
                    if spec.max_restarts > 0:
                        spec.max_restarts -= 1     # what its next host may still use
                    record.rank = None
                    record.state = ActorState.PENDING_CREATION   # (the scheduler forgot
                                                                 # what it held on rank)
                    if not self._try_place(record):
                        self.waiting.append(actor_id)
                    continue
                reason = f"its rank {rank} died"
                self._mark_dead(record, serialization.actor_died(record.spec.class_name,
                                                                 actor_id, reason))
                if record.spec.owner != rank:  # its construction may still be pending there
                    self.send(record.spec.owner, messages.actor_placed(actor_id, None,
                                                                       record.error))
        for actor_id, record in list(self.records.items()):
            if (record.spec.owner == rank and not record.spec.detached
                    and record.state != ActorState.DEAD):    # they die with their owner
                self.on_kill(actor_id, f"its owner, rank {rank}, died")
    def on_kill(self, actor_id, reason, restart=False):
        """ACTOR_KILL_AT_HEAD: a kill for an actor whose rank the killer did not know:
        forward it, or end the actor here if it was not placed yet (a kill that lets it
        restart does nothing to an actor not built yet)."""
        record = self.records.get(actor_id)
        if record is None:
            return
        if record.state == ActorState.ALIVE:
            self.send(record.rank, messages.actor_kill(actor_id, reason, restart))
        elif record.state == ActorState.PENDING_CREATION and not restart:
            self._mark_dead(record, serialization.actor_died(record.spec.class_name,
                                                             actor_id, reason))

    def on_release(self, actor_id):
        """ACTOR_RELEASE_AT_HEAD: every handle is gone, and the owner did not know where the
        actor lives: forward, or end it here if it was not placed yet."""
        record = self.records.get(actor_id)
        if record is None:
            return
        if record.state == ActorState.ALIVE:
            self.send(record.rank, messages.actor_release(actor_id))
        elif record.state == ActorState.PENDING_CREATION:
            self._mark_dead(record, serialization.actor_died(record.spec.class_name, actor_id,
                                                             "all handles to it are gone"))

    def forget(self):
        namespace, dead = self.default_namespace, self.dead
        self.__init__(self.send, self.capacities, self.hold, self.node_of,
                      self.placement_groups)
        self.default_namespace, self.dead = namespace, dead
