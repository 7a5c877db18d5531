"""The pure state holders, without MPI, driven with small fakes: the head's scheduler, the
actor directory, the reference tracker, actor mailboxes, and serialization (object records on
and off the wire, a fake node store for stored objects)."""
import pickle
import threading

import numpy as np
import pytest

from hpcray.actors.mailbox import Mailbox
from hpcray.core.metrics import COUNTER, GAUGE, HISTOGRAM, MetricsTable, Recorder
from hpcray.core.refcount import RefTracker
from hpcray.exceptions import (ActorDiedError, ActorUnschedulableError, ObjectLostError,
                               TaskError)
from hpcray.head.directory import ActorDirectory
from hpcray.head.groups import GroupRegistry
from hpcray.head.placement_groups import PlacementGroups
from hpcray.head.scheduler import GlobalScheduler
from hpcray.wire import messages, objects, serialization
from hpcray.wire.ids import make_id
from hpcray.wire.specs import SPREAD, ActorSpec, ActorState, TaskSpec, node_affinity
from hpcray.workers.memory import MemoryMonitor


def _task(task_id, cpus=1.0, node_hint=None, caller=None, deps=(), strategy=None):
    return TaskSpec(task_id, 0, f"t{task_id}", b"f", None, None, tuple(deps), 1,
                    {"CPU": cpus}, 0, False, True, 0, node_hint=node_hint, caller=caller,
                    strategy=strategy)


# ---------------------------------------------------------------------- global scheduler
def test_scheduler_spreads_queues_and_refills_freed_ranks():
    scheduler = GlobalScheduler({1: {"CPU": 1.0}, 2: {"CPU": 1.0}}, prefetch=0)
    assert [scheduler.place(_task(i)) for i in range(2)] == [1, 2]   # least loaded first
    assert scheduler.place(_task(2)) is None                         # every rank is full
    assert len(scheduler.queue) == 1 and scheduler.drain() == []
    scheduler.on_done(0, seconds=0.5)                                  # rank 1 frees a slot
    placed = scheduler.drain()
    assert [(rank, spec.task_id) for rank, spec in placed] == [(1, 2)]
    assert scheduler.where(2) == 1 and scheduler.where(0) is None


def test_tasks_given_back_go_elsewhere_and_their_rank_stalls_until_one_is_done():
    scheduler = GlobalScheduler({1: {"CPU": 1.0}, 2: {"CPU": 1.0}}, prefetch=3)   # depth 4
    for i in range(8):
        scheduler.place(_task(i))              # rank 1: 0, 2, 4, 6; rank 2: 1, 3, 5, 7
    scheduler.on_done(1)                       # rank 2 goes on; rank 1 is held by task 0
    held = [_task(i) for i in (2, 4, 6)]       # rank 1's queued ones come back
    placed = scheduler.take_back(1, held + [_task(99)])   # (99: never placed there)
    assert [(rank, spec.task_id) for rank, spec in placed] == [(2, 2)]
    assert [spec.task_id for spec in scheduler.queue] == [4, 6]  # no room: first in line
    assert scheduler.where(4) is None and scheduler.count[1] == 1
    assert scheduler.drain() == []             # rank 2 is full, rank 1 stalled
    scheduler.on_done(3)
    assert [(rank, spec.task_id) for rank, spec in scheduler.drain()] == [(2, 4)]
    assert scheduler.drain() == []             # stalled: no more than it runs at once
    scheduler.on_done(0)                       # its long task is over: it takes work again
    assert [(rank, spec.task_id) for rank, spec in scheduler.drain()] == [(1, 6)]
    assert scheduler.take_back(3, held) == []  # (a rank declared dead meanwhile)


def test_a_blocked_task_lends_its_slot_and_takes_it_back():
    scheduler = GlobalScheduler({1: {"CPU": 1.0}}, prefetch=0)
    scheduler.place(_task(0))
    assert scheduler.place(_task(1)) is None
    scheduler.on_blocked(0, True)                                       # waits in get
    assert [spec.task_id for _, spec in scheduler.drain()] == [1]
    scheduler.on_blocked(0, False)
    assert scheduler.count[1] == 2 and scheduler.available()["CPU"] == 0.0


def test_node_hints_and_resources_and_actor_holds():
    scheduler = GlobalScheduler({1: {"CPU": 2.0}, 2: {"CPU": 2.0, "GPU": 1.0}}, prefetch=0)
    scheduler.node_of = [0, 1, 2]
    assert scheduler.place(_task(0, node_hint=2)) == 2
    gpu = _task(1)
    gpu.resources = {"CPU": 1.0, "GPU": 1.0}
    assert scheduler.place(gpu) == 2                                   # only rank 2 fits
    scheduler.hold(1, {"CPU": 2.0}, +1)                                 # an actor holds rank 1
    assert scheduler.place(_task(2)) is None
    assert scheduler.cancel_queued(2).task_id == 2 and not scheduler.queue


def _two_nodes():
    """Ranks 1, 2 on node 0 and 3, 4 on node 1 (rank 0, the head, runs nothing)."""
    scheduler = GlobalScheduler({r: {"CPU": 1.0} for r in (1, 2, 3, 4)}, prefetch=0)
    scheduler.node_of = [0, 0, 0, 1, 1]
    return scheduler


def test_spread_goes_round_the_nodes_and_default_packs_the_least_loaded():
    scheduler = _two_nodes()
    placed = [scheduler.place(_task(i, cpus=0.1, strategy=SPREAD)) for i in range(4)]
    assert [scheduler.node_of[rank] for rank in placed] == [0, 1, 0, 1]
    assert sorted(placed) == [1, 2, 3, 4]


def test_a_node_affinity_places_there_only_and_waits_there_without_holding_others_up():
    scheduler = _two_nodes()
    on_node_1 = node_affinity(1, False)
    assert [scheduler.place(_task(i, strategy=on_node_1)) for i in range(2)] == [3, 4]
    assert scheduler.place(_task(2, strategy=on_node_1)) is None        # node 1 is full:
    assert scheduler.waiting() == 1 and not scheduler.queue              # it waits there,
    assert scheduler.place(_task(3)) in (1, 2)                           # others go on
    scheduler.on_done(0)
    assert [(rank, spec.task_id) for rank, spec in scheduler.drain()] == [(3, 2)]
    spilling = _task(4, strategy=node_affinity(1, True, True))           # soft, spill
    assert scheduler.place(spilling) in (1, 2) and spilling.strategy is None
    assert scheduler.place(_task(5, strategy=node_affinity(1, False, False, True))) is None
    assert [spec.task_id for spec, _ in scheduler.unschedulable] == [5]  # fail if busy


def test_an_affinity_that_can_never_be_met_fails_unless_soft():
    scheduler = _two_nodes()
    assert scheduler.place(_task(0, strategy=node_affinity(-1, False))) is None
    assert scheduler.place(_task(1, strategy=node_affinity(1, False), cpus=2.0)) is None
    soft = _task(2, strategy=node_affinity(-1, True))
    assert scheduler.place(soft) in (1, 2, 3, 4) and soft.strategy is None
    reasons = dict((spec.task_id, reason) for spec, reason in scheduler.unschedulable)
    assert "no node of this job" in reasons[0] and "resources" in reasons[1]
    scheduler.unschedulable.clear()
    # Tasks waiting for a node whose ranks all die: soft ones run elsewhere, others fail.
    for i in (3, 4):
        scheduler.place(_task(i, strategy=node_affinity(1, False)))
    hard, soft = _task(5, strategy=node_affinity(1, False)), _task(6, strategy=node_affinity(1, True))
    assert scheduler.place(hard) is None and scheduler.place(soft) is None
    assert sorted(scheduler.remove_rank(3) + scheduler.remove_rank(4)) == [3, 4]
    assert [spec.task_id for spec, _ in scheduler.unschedulable] == [5]
    assert "died" in scheduler.unschedulable[0][1]
    assert [spec.task_id for spec in scheduler.queue] == [6] and soft.strategy is None
    assert scheduler.cancel_queued(6) is soft


# ---------------------------------------------------------------------- actor directory
class _Outbox:
    def __init__(self):
        self.sent = []

    def send(self, rank, message):
        self.sent.append((rank, message))

    def kinds(self):
        return [(rank, messages.BY_CODE[message[0]].name) for rank, message in self.sent]


def _actor(actor_id, owner=3, name=None, cpus=0.0, strategy=None):
    return ActorSpec(actor_id, owner, "Counter", b"c", b"blob", None, (), None,
                     {"CPU": cpus} if cpus else {}, 1, False, name, None, False, 0,
                     {"add": 1}, strategy=strategy)


def _directory(capacities=None, node_of=(0, 0, 0)):
    outbox, holds = _Outbox(), []
    capacities = capacities or {1: {"CPU": 1.0}, 2: {"CPU": 1.0}}
    directory = ActorDirectory(outbox.send, lambda: capacities,
                               lambda rank, request, sign: holds.append((rank, sign)),
                               list(node_of))
    return directory, outbox, holds


def test_directory_follows_spread_and_node_affinity():
    capacities = {r: {"CPU": 1.0} for r in (1, 2, 3, 4)}
    directory, outbox, _ = _directory(capacities, node_of=(0, 0, 0, 1, 1))
    for actor_id in (10, 11):
        directory.on_create(_actor(actor_id, strategy=SPREAD))
    assert {directory.node_of[directory.placed_rank(a)] for a in (10, 11)} == {0, 1}
    directory.on_create(_actor(12, cpus=1.0, strategy=node_affinity(1, False)))
    directory.on_create(_actor(13, cpus=1.0, strategy=node_affinity(1, False)))
    assert directory.node_of[directory.placed_rank(12)] == 1
    assert directory.node_of[directory.placed_rank(13)] == 1
    directory.on_create(_actor(14, cpus=1.0, strategy=node_affinity(1, False)))
    assert directory.placed_rank(14) is None                  # node 1 is full: it waits
    directory.on_gone(12, "ended")
    assert directory.placed_rank(14) in (3, 4)
    outbox.sent.clear()
    directory.on_create(_actor(15, owner=2, strategy=node_affinity(-1, False)))
    [(rank, message)] = outbox.sent
    assert rank == 2 and messages.BY_CODE[message[0]].name == "ACTOR_PLACED"
    with pytest.raises(ActorUnschedulableError, match="node id"):
        serialization.materialize(messages.error_from_wire(message[3]))


def test_directory_places_actors_evenly_and_answers_lookups():
    directory, outbox, holds = _directory()
    directory.on_lookup(10, requester=5)                 # asked before its CREATE arrived
    directory.on_create(_actor(10))
    directory.on_create(_actor(11))
    assert outbox.kinds() == [(1, "ACTOR_START"), (3, "ACTOR_PLACED"), (5, "ACTOR_PLACED"),
                              (2, "ACTOR_START"), (3, "ACTOR_PLACED")]
    assert directory.placed_rank(10) == 1 and directory.placed_rank(11) == 2
    assert holds == [(1, 1), (2, 1)]
    assert [a["state"] for a in directory.list_actors()] == [ActorState.ALIVE] * 2


def test_directory_queues_an_actor_until_resources_free_and_names_it():
    directory, outbox, holds = _directory({1: {"CPU": 1.0}})
    directory.on_create(_actor(10, cpus=1.0))
    directory.on_create(_actor(11, cpus=1.0))             # no room: waits
    assert directory.placed_rank(11) is None
    directory.on_lookup(11, requester=4)
    directory.on_gone(10, "released")                     # 10 ends: 11 takes its place
    assert directory.placed_rank(11) == 1
    assert (4, "ACTOR_PLACED") in outbox.kinds()[-3:]
    # names: a duplicate fails, get_if_exists answers the live one
    directory.on_name_actor((7, 1), _actor(20, name="acc"), False)
    directory.on_name_actor((7, 2), _actor(21, name="acc"), False)
    directory.on_name_actor((7, 3), _actor(22, name="acc"), True)
    replies = [message for rank, message in outbox.sent if message[0] == messages.REPLY]
    assert replies[0][2:] == (True, ("created", None))
    assert replies[1][2] is False and isinstance(replies[1][3], ValueError)
    assert replies[2][3] == ("exists", (20, "Counter", {"add": 1}, False))


def test_directory_ends_an_actor_killed_before_it_was_placed():
    directory, outbox, _ = _directory({1: {"CPU": 0.0}})
    directory.on_create(_actor(10, cpus=1.0))             # never fits now
    directory.on_lookup(10, requester=6)
    directory.on_kill(10, "killed")
    rank, message = outbox.sent[-1]
    assert rank in (3, 6) and message[0] == messages.ACTOR_PLACED and message[2] is None
    error = messages.error_from_wire(message[3])
    with pytest.raises(ActorDiedError, match="killed"):
        serialization.materialize(error)


def test_group_registry_answers_once_every_member_is_placed():
    directory, outbox, _ = _directory()
    groups = GroupRegistry(outbox.send, directory.placed_rank)
    directory.on_create(_actor(10))
    groups.declare("g", 2, {10: 0, 11: 1})
    assert groups.info("g") is None                       # 11 is not placed yet
    directory.on_create(_actor(11))
    assert groups.info("g", mpi_rank=1) == (2, {0: (10, 1), 1: (11, 2)}, False)
    assert groups.info("g", mpi_rank=2)[2] is True
    with pytest.raises(ValueError, match="taken"):
        groups.join("g", 2, 0, 99)


# ---------------------------------------------------------------------- reference tracker
def _tracker(rank):
    outbox, unused, acked = _Outbox(), [], []
    tracker = RefTracker(rank, 4, outbox.send, unused.append, lambda: acked.append(1))
    return tracker, outbox, unused, acked


def test_local_counts_free_an_owned_object_when_the_last_ref_goes():
    tracker, _, unused, _ = _tracker(0)
    oid = make_id(0, 5)
    tracker.note(oid, +1)
    tracker.note(oid, +1)
    tracker.note(oid, -1)
    tracker.process_events()
    assert tracker.in_use(oid) and unused == []
    tracker.note(oid, -1)
    tracker.process_events()
    assert not tracker.in_use(oid) and unused == [oid]
    tracker.note_escape(oid)                              # pickled outside a tracked path
    tracker.process_events()
    assert tracker.in_use(oid)


def test_borrowers_register_and_release():
    owner, owner_out, unused, _ = _tracker(0)
    borrower, borrower_out, _, acked = _tracker(2)
    oid = make_id(0, 9)
    borrower.note(oid, +1)                                # a ref unpickled on rank 2
    assert borrower.register([oid]) == {oid}
    (dest, borrow), = borrower_out.sent
    assert dest == 0 and borrow == messages.borrow(oid, 2)
    owner.on_borrow(oid, 2)
    assert owner.in_use(oid) and owner_out.sent == [(2, messages.ack(oid))]
    borrower.on_ack(oid)
    assert acked and borrower.pending_acks({oid}) == set()
    borrower.note(oid, -1)
    borrower.process_events()
    assert borrower_out.sent[-1] == (0, messages.unborrow(oid, 2))
    owner.on_unborrow(oid, 2)
    assert unused == [oid] and not owner.in_use(oid)


def test_refs_inside_results_are_handed_off_after_the_owner_registered():
    executor, executor_out, _, _ = _tracker(3)
    owner, owner_out, _, _ = _tracker(1)
    inner = make_id(2, 4)                                 # owned by a third rank
    executor.result_held(77, [inner])                     # the executor holds it for now
    assert executor_out.sent == [(2, messages.borrow(inner, 3))]
    owner.note(inner, +1)
    pending = owner.contain(make_id(1, 1), [inner])       # the owner keeps the result
    owner.took_over(77, executor=3, pending=pending)
    assert owner_out.sent == [(2, messages.borrow(inner, 1))]   # HANDOFF waits for the ACK
    owner.on_ack(inner)
    assert owner_out.sent[-1] == (3, messages.handoff(77))
    executor.on_handoff(77)                               # the executor lets go
    assert executor.borrowed.get(inner) is None
    assert executor_out.sent[-1] == (2, messages.unborrow(inner, 3))


# ---------------------------------------------------------------------- mailboxes
def _call(task_id, caller, deps=()):
    call = _task(task_id, caller=caller, deps=deps)
    call.actor_id = 1
    return call


def test_calls_of_one_caller_run_in_order_and_a_waiting_call_holds_back_only_its_caller():
    mailbox = Mailbox()
    first = mailbox.add(_call(1, caller="a", deps=[100]))  # waits for an argument
    mailbox.add(_call(2, caller="a"))
    mailbox.add(_call(3, caller="b"))
    assert [entry.call.task_id for entry in mailbox.runnable] == [3]
    mailbox.arrived(first, 100, objects.value(b""))
    order = []
    while (entry := mailbox.next()) is not None:
        order.append(entry.call.task_id)
    assert order == [3, 1, 2] and not mailbox


def test_cancel_and_drain():
    mailbox = Mailbox()
    waiting = mailbox.add(_call(1, caller="a", deps=[100]))
    mailbox.add(_call(2, caller="a"))
    mailbox.add(_call(3, caller="b"))
    assert mailbox.cancel(1).task_id == 1                 # the caller's next may go now
    assert [entry.call.task_id for entry in mailbox.runnable] == [3, 2]
    assert mailbox.cancel(42) is None
    assert waiting.missing == 1
    assert [call.task_id for call in mailbox.drain()] == [3, 2] and not mailbox


# ---------------------------------------------------------------------- serialization
class _FakeStore:
    """A node store in plain memory: write_object, pin, view (what serialization needs)."""
    node_index = 4

    def __init__(self):
        self.objects = {}
        self.pins = 0

    def write_object(self, buffers):
        slot = len(self.objects)
        data = b"".join(bytes(buffer) for buffer in buffers)
        self.objects[slot] = bytearray(data)
        parts, offset = [], 0
        for buffer in buffers:
            parts.append((offset, buffer.nbytes))
            offset += buffer.nbytes
        return slot, len(data), parts

    def pin(self, slot, count=1):
        self.pins += count
        return 0

    def view(self, slot, start, offset, nbytes):
        return memoryview(self.objects[slot])[offset:offset + nbytes]


def test_small_values_inline_and_large_ones_stored():
    store = _FakeStore()
    small = serialization.encode({"a": 1}, store, rank=2)
    assert small.kind == objects.VALUE
    array = np.arange(10.0)
    inline = serialization.encode(array, store, rank=2, inline_limit=1 << 20)
    assert inline.kind == objects.INLINE and not store.objects
    big = serialization.encode(array, store, rank=2, inline_limit=16)
    assert big.kind == objects.STORED and (big.node, big.writer, big.slot) == (4, 2, 0)
    assert np.array_equal(serialization.materialize(big, store), array) and store.pins == 1
    assert np.array_equal(serialization.materialize(inline), array)
    assert serialization.materialize(small) == {"a": 1}
    other = _FakeStore()
    other.node_index = 5
    with pytest.raises(RuntimeError, match="fetched to this node"):
        serialization.materialize(big, other)


def test_records_travel_as_plain_tuples_and_come_back():
    for obj in (objects.value(b"x"), objects.inline(b"h", [b"1"]),
                objects.stored(1, 2, 3, 4, b"h", [(0, 4)]), serialization.lost(make_id(1, 1))):
        wire = objects.to_wire(obj)
        assert type(wire) is tuple
        back = objects.from_wire(pickle.loads(pickle.dumps(wire)))
        assert back == obj and type(back) is type(obj)
    spec = _task(7)
    spec.args_blob = objects.value(pickle.dumps(((1,), {})))
    again = pickle.loads(pickle.dumps(spec))
    assert type(again.args_blob) is objects.Value and again.args_blob == spec.args_blob
    result = messages.result(7, [(8, objects.value(b"v"))], 0.1, 2, None)
    assert type(result[2][0][1]) is tuple                 # plain on the wire


def test_errors_keep_their_type_and_remote_traceback():
    try:
        raise KeyError("missing")
    except KeyError as error:
        obj = serialization.error_object(error, "mod.f", "rank 3 on host h (pid 1)")
    with pytest.raises(KeyError) as caught:
        serialization.materialize(obj)
    assert isinstance(caught.value, TaskError)
    assert "rank 3 on host h" in str(caught.value.__cause__)
    with pytest.raises(ObjectLostError):
        serialization.materialize(serialization.lost(make_id(0, 1)))


def test_an_unpicklable_argument_is_named():
    with pytest.raises(serialization.SerializationError, match="argument 1"):
        serialization.serialize_args("f", (1, threading.Lock()), {})


def test_the_memory_monitor_looks_at_its_interval_and_reports_only_above_the_threshold():
    now = [0.0]
    used = [90]
    monitor = MemoryMonitor(0.95, 250, read=lambda: (used[0] << 30, 100 << 30, "the machine"),
                            clock=lambda: now[0])
    assert monitor.over() is None                  # 90% of 100 GiB
    used[0] = 97
    assert monitor.over() is None                  # not due yet: the last look was just now
    now[0] = 0.3
    seen = monitor.over()
    assert "97%" in seen and "97.0 of 100.0 GiB of the machine" in seen
    assert "HPCRAY_MEMORY_USAGE_THRESHOLD=0.95" in seen
    now[0] = 0.4
    assert monitor.over() is None                  # again only after 250 ms


# ---------------------------------------------------------------------- metrics
def test_metric_deltas_add_up_across_processes():
    worker, rank, table = Recorder(), Recorder(), MetricsTable()
    tags = (("k", "a"),)
    for _ in range(3):
        worker.record(COUNTER, "n", "count", tags, 1.0)
    worker.record(GAUGE, "g", "", (), 5.0)
    worker.record(HISTOGRAM, "h", "", (), 0.5, (0.1, 1.0))
    rank.record(COUNTER, "n", "count", tags, 2.0)
    rank.put_back(worker.take())               # a worker process's, via its rank
    assert worker.take() is None and rank.dirty
    table.merge(rank.take())
    rank.record(GAUGE, "g", "", (), 9.0)       # later: the last set wins
    rank.record(HISTOGRAM, "h", "", (), 2.0, (0.1, 1.0))
    table.merge(rank.take())
    snap = table.snapshot()
    assert snap["n"]["values"] == [({"k": "a"}, 5.0)] and snap["n"]["description"] == "count"
    assert snap["g"]["values"] == [({}, 9.0)]
    assert snap["h"]["values"] == [({}, {"buckets": [0, 1, 1], "count": 2, "sum": 2.5})]
    assert snap["h"]["boundaries"] == [0.1, 1.0]


# ---------------------------------------------------------------------- placement groups
def _groups(cpus_per_rank=2.0):
    """Ranks 1, 2 on node 0 and 3, 4 on node 1; holds recorded as the scheduler's."""
    capacities = {r: {"CPU": cpus_per_rank} for r in (1, 2, 3, 4)}
    held = {}

    def hold(rank, request, sign):
        for name, amount in request.items():
            held.setdefault(rank, {})[name] = held.get(rank, {}).get(name, 0.0) + sign * amount
    groups = PlacementGroups(lambda: capacities, held.get, hold, [0, 0, 0, 1, 1])
    return groups, held


def test_placement_group_strategies_map_bundles_to_ranks_and_nodes():
    groups, held = _groups()
    node_of = [0, 0, 0, 1, 1]
    pack, _ = groups.create([{"CPU": 2}, {"CPU": 2}], "STRICT_PACK", "", 0)
    ranks = groups.groups[pack].ranks
    assert len({node_of[r] for r in ranks}) == 1 and len(set(ranks)) == 2
    spread, _ = groups.create([{"CPU": 1}, {"CPU": 1}], "STRICT_SPREAD", "", 0)
    assert groups.groups[spread].state == "PENDING"        # one node is full: wait
    groups.remove(pack)
    assert [g.group_id for g in groups.retry()] == [spread]
    assert len({node_of[r] for r in groups.groups[spread].ranks}) == 2
    # work in a bundle: on its rank, charged to it, waits once it is full
    rank, index = groups.choose(spread, 0, {"CPU": 1})
    assert rank == groups.groups[spread].ranks[0] and index == 0
    groups.charge(spread, 0, {"CPU": 1}, +1)
    assert groups.choose(spread, 0, {"CPU": 1}) is None
    assert groups.choose(spread, -1, {"CPU": 1})[1] == 1     # any bundle: the other one
    assert "does not fit" in groups.choose(spread, 0, {"CPU": 5})
    _, never = groups.create([{"CPU": 1}] * 3, "STRICT_SPREAD", "", 0)
    assert "needs 3 nodes" in never
    with pytest.raises(ValueError, match="strategy"):
        groups.create([{"CPU": 1}], "TIGHT", "", 0)
    groups.create([{"CPU": 1}], "PACK", "named", 0)
    with pytest.raises(ValueError, match="already exists"):
        groups.create([{"CPU": 1}], "PACK", "named", 0)
    # a rank dies: its groups are pending again, their other reservations given back
    again = groups.on_rank_dead(groups.groups[spread].ranks[0])
    assert spread in [g.group_id for g in again] and groups.groups[spread].ranks is None
    assert groups.groups[spread].state == "PENDING" and spread in groups.pending

