"""A rank that held actors and owned objects dies: its actors' calls raise ActorDiedError
naming the rank, unless they may restart (max_restarts): then they are built again on another
rank and the calls that were there run again while max_task_retries allows; the objects it
owned raise OwnerDiedError at get, a collective group with a member there fails on every
other member, and the rest of the job goes on."""
import os
import signal
import time

import numpy as np

import hpcray as ray
from hpcray.util import collective
from hpcray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from jobkit import check, rank_pid, record


@ray.remote(num_cpus=1)                  # one per worker rank
class Member:
    def __init__(self, rank, world):
        collective.init_collective_group(world, rank, group_name="g")

    def rank(self):
        return ray.get_runtime_context().get_rank()

    def own(self):
        return [ray.put(np.arange(10)), ray.put("small")]

    def allreduce(self):
        x = np.ones(4)
        collective.allreduce(x, group_name="g")
        return x.tolist()

    def die(self):
        os.kill(rank_pid(), signal.SIGKILL)              # the rank, not the actor's process

    def make_children(self, node_id):
        """Two actors this rank owns, placed on another rank: one dies with its owner, the
        detached one does not (Ray's fate sharing)."""
        there = NodeAffinitySchedulingStrategy(node_id, soft=False)
        children = [Phoenix.options(scheduling_strategy=there).remote(1),
                    Phoenix.options(scheduling_strategy=there, lifetime="detached").remote(2)]
        ray.get([child.where.remote() for child in children])
        return children


@ray.remote
class Phoenix:
    """Restarts elsewhere when its rank dies; counts from its __init__ again."""
    def __init__(self, start):
        self.value = start

    def where(self):
        return ray.get_runtime_context().get_rank()

    def slow(self, seconds):
        time.sleep(seconds)
        self.value += 1
        return [ray.get_runtime_context().get_rank(), self.value]


members = [Member.remote(i, 3) for i in range(3)]
phoenixes = [Phoenix.options(max_restarts=1, max_task_retries=1).remote(10 * i)
             for i in range(3)]
fragile = [Phoenix.options(max_restarts=1).remote(100 + i) for i in range(3)]
record("before", ray.get([m.allreduce.remote() for m in members], timeout=60))
ranks = ray.get([m.rank.remote() for m in members], timeout=60)
victim = members[2]
owned = ray.get(victim.own.remote(), timeout=60)           # refs owned by the victim's rank
blocked = [m.allreduce.remote() for m in members[:2]]       # they wait for the third member
homes = ray.get([p.where.remote() for p in phoenixes + fragile], timeout=60)
phoenix = phoenixes[homes[:3].index(ranks[2])]                # the one on the victim's rank
frail = fragile[homes[3:].index(ranks[2])]
survivor_node = next(node["NodeID"] for node in ray.nodes() if ranks[0] in node["Ranks"])
owned_child, detached_child = ray.get(victim.make_children.remote(survivor_node), timeout=60)
in_flight = phoenix.slow.remote(2.0)                          # there when the rank dies
lost_call = frail.slow.remote(2.0)
time.sleep(0.5)
victim.die.remote()
started = time.time()
deadline = time.time() + 30
while all(node["Alive"] for node in ray.nodes()) and time.time() < deadline:
    time.sleep(0.005)
record("detect_seconds", time.time() - started)


@check
def actor_call():
    return ray.get(victim.rank.remote(), timeout=30)


@check
def owned_object():
    return ray.get(owned[1], timeout=30)


@check
def collective_members():
    try:
        ray.get(blocked, timeout=60)                      # blocked in MPI when it died
    finally:
        record("collective_seconds", time.time() - started)


@check
def collective_after():
    return ray.get(members[0].allreduce.remote(), timeout=60)


record("victim_rank", ranks[2])
record("survivors", ray.get([m.rank.remote() for m in members[:2]], timeout=30))


@check
def restarted_actor_call_in_flight():
    return ray.get(in_flight, timeout=60)


@check
def restarted_actor_after():
    return ray.get(phoenix.slow.remote(0), timeout=60)


@check
def call_in_flight_without_retries():
    return ray.get(lost_call, timeout=60)


@check
def that_actor_after():
    return ray.get(frail.slow.remote(0), timeout=60)


@check
def child_of_the_dead_rank():
    return ray.get(owned_child.slow.remote(0), timeout=30)


record("detached_child_after", ray.get(detached_child.slow.remote(0), timeout=30))
record("phoenix_start", phoenixes.index(phoenix) * 10)
record("frail_start", 100 + fragile.index(frail))
