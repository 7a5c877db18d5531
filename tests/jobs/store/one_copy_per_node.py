"""Job of tests/test_store.py::test_one_copy_per_node."""
import time
import numpy as np
import hpcray as ray
from jobkit import on_rank, record

@ray.remote
def probe(box):
    value = ray.get(box[0])
    time.sleep(0.2)                                  # keep ranks busy: spread the probes
    object_id = box[0].id
    copy = on_rank(lambda rt: rt.copies.held_copy(object_id))
    context = ray.get_runtime_context()
    return (context.get_node_id(), context.get_rank(),
            None if copy is None else copy.slot, float(value[0]))

head_node = ray.get_runtime_context().get_node_id()
ref = ray.put(np.full(2_000_000, 7.0))
out = ray.get([probe.remote([ref]) for _ in range(12)])
record("values", sorted({v for *_, v in out}))
by_node = {}
for node, rank, slot, _ in out:
    if node != head_node:
        by_node.setdefault(node, {"ranks": set(), "slots": set()})
        by_node[node]["ranks"].add(rank)
        by_node[node]["slots"].add(slot)
record("nodes_with_many_readers",
       sum(1 for d in by_node.values() if len(d["ranks"]) >= 2))
record("copies_per_node", sorted(len(d["slots"]) for d in by_node.values()))
