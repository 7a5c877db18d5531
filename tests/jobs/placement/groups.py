"""Job of tests/test_placement_groups.py: Ray's placement groups on the ranks of an MPI job
(every executing rank has 1 CPU): reserve, run tasks and actors in bundles, pending groups,
removal, names and the table, written as Ray's docs use them."""
import time

import hpcray as ray
from hpcray.util.placement_group import (get_current_placement_group, get_placement_group,
                                         placement_group, placement_group_table,
                                         remove_placement_group)
from hpcray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from jobkit import check, record


@ray.remote(num_cpus=1)
def where():
    time.sleep(0.05)
    return [ray.get_runtime_context().get_rank(), get_current_placement_group() is not None]


@ray.remote(num_cpus=1)
class Member:
    def rank(self):
        return ray.get_runtime_context().get_rank()

    def child(self):
        return ray.get(where.options(num_cpus=0).remote())   # captured: in the group


@ray.remote(num_cpus=1)
def parent():
    return ray.get(where.remote())              # captured: runs in the parent's group


def in_bundle(group, index=-1, capture=False):
    return PlacementGroupSchedulingStrategy(group, index, capture)


spread = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD", name="pair")
record("ready", [ray.get(spread.ready(), timeout=30) == spread, spread.wait(10)])
table = placement_group_table(spread)
record("table", [table["state"], table["strategy"], table["name"],
                 len(set(table["bundles_to_node_id"].values()))])
record("all_groups", list(placement_group_table().keys()) == [spread.id.hex()])
record("by_name", get_placement_group("pair") == spread)
ranks = [ray.get(where.options(scheduling_strategy=in_bundle(spread, i)).remote())[0]
         for i in (0, 1)]
record("bundles_on_their_ranks", [ranks == [table["bundles_to_rank"][0],
                                            table["bundles_to_rank"][1]], len(set(ranks))])
record("any_bundle", sorted({tuple(r) for r in ray.get(
    [where.options(scheduling_strategy=in_bundle(spread)).remote() for _ in range(6)])}))
record("outside_groups_waits", ray.wait([where.remote()], timeout=0.5)[0] == [])
record("captured", ray.get(parent.options(scheduling_strategy=in_bundle(spread, 0, True))
                           .remote(), timeout=30))
member = Member.options(scheduling_strategy=in_bundle(spread, 1)).remote()
record("actor_in_bundle", ray.get(member.rank.remote()) == table["bundles_to_rank"][1])
capturing = Member.options(scheduling_strategy=in_bundle(spread, 0, True)).remote()
record("captured_by_an_actor", ray.get(capturing.child.remote(), timeout=30)[1])

pending = placement_group([{"CPU": 1}], strategy="STRICT_PACK")
record("pending_while_reserved", [pending.wait(0.5), placement_group_table(pending)["state"]])
remove_placement_group(spread)
record("placed_after_removal", [pending.wait(30), placement_group_table(pending)["state"]])
try:
    ray.get(member.rank.remote(), timeout=30)
    record("actor_after_removal", "still alive")
except ray.exceptions.ActorDiedError:
    record("actor_after_removal", "ActorDiedError")
remove_placement_group(pending)


@check
def bad_strategy():
    placement_group([{"CPU": 1}], strategy="TIGHT")


@check
def empty_bundle():
    placement_group([{}])


@check
def bundle_out_of_range():
    group = placement_group([{"CPU": 1}])
    try:
        return ray.get(where.options(scheduling_strategy=in_bundle(group, 3)).remote(),
                       timeout=30)
    finally:
        remove_placement_group(group)
