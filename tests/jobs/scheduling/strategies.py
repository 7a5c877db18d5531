"""Job of tests/test_scheduling.py::test_scheduling_strategies_do_what_rays_do: "SPREAD",
"DEFAULT", NodeAffinitySchedulingStrategy (hard, soft, unknown node, from a nested task, for
actors) and Ray's node:<ip> resources, written as a Ray user would."""
import time

import hpcray as ray
from hpcray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from jobkit import check, record


@ray.remote
def where():
    time.sleep(0.02)
    return ray.get_runtime_context().get_node_id()


@ray.remote
def nested(target):
    return ray.get(where.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(target, soft=False)).remote())


@ray.remote
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()


nodes = [node["NodeID"] for node in ray.nodes() if node["Resources"].get("CPU")]
record("nodes", len(ray.nodes()))
record("executing_nodes", len(nodes))
record("node_id_is_rays_length", all(len(node) == 56 for node in nodes))
record("context_node_id_hex", ray.get_runtime_context().node_id.hex()
       == ray.get_runtime_context().get_node_id())

# SPREAD: as many tasks at once as nodes reach every node (DEFAULT fills the least-loaded
# ranks, of any node).
spread = ray.get([where.options(scheduling_strategy="SPREAD").remote() for _ in nodes])
record("spread_nodes", len(set(spread)))
record("default_runs", ray.get(where.options(scheduling_strategy="DEFAULT").remote()) in nodes)

# A hard affinity: all on that node, more tasks than its ranks run at once (they wait there).
for index in (0, len(nodes) - 1):
    target = nodes[index]
    on_target = NodeAffinitySchedulingStrategy(node_id=target, soft=False)
    placed = ray.get([where.options(scheduling_strategy=on_target).remote() for _ in range(12)])
    record(f"affinity_{index and 'last'}_all_there", all(node == target for node in placed))
record("nested_affinity", ray.get(nested.remote(nodes[-1])) == nodes[-1])

# A node that does not exist: Ray's error when hard, anywhere when soft.
bogus = "ab" * 28


@check
def hard_unknown_node():
    return ray.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        bogus, soft=False)).remote(), timeout=30)


record("soft_unknown_node_runs", ray.get(where.options(
    scheduling_strategy=NodeAffinitySchedulingStrategy(bogus, soft=True)).remote()) in nodes)

# Actors.
spread_actors = [Where.options(scheduling_strategy="SPREAD").remote() for _ in nodes]
record("actor_spread_nodes", len(set(ray.get([a.node.remote() for a in spread_actors]))))
pinned = Where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[1], False)).remote()
record("actor_affinity", ray.get(pinned.node.remote()) == nodes[1])
nowhere = Where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(bogus, False)).remote()


@check
def actor_on_unknown_node():
    return ray.get(nowhere.node.remote(), timeout=30)


# Ray's node resources.
ip = ray.util.get_node_ip_address()
record("node_ip_resource", ray.cluster_resources().get(f"node:{ip}"))
record("node_ip_available", ray.available_resources().get(f"node:{ip}"))
record("head_resource", ray.cluster_resources().get("node:__internal_head__"))
record("node_ip_task", ray.get(where.options(resources={f"node:{ip}": 0.01}).remote()) in nodes)


@check
def unknown_strategy():
    return where.options(scheduling_strategy="BOGUS").remote()


@check
def invalid_node_id():
    return NodeAffinitySchedulingStrategy("not hex", soft=False)
