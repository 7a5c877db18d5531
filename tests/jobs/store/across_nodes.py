"""Job of tests/test_store.py::test_objects_cross_simulated_nodes."""
import numpy as np
import hpcray as ray
from jobkit import record

nodes = {n["NodeID"]: n["Ranks"] for n in ray.nodes()}
record("nodes", len(nodes))
head_node = ray.get_runtime_context().get_node_id()

@ray.remote
def make(n, value):
    return ray.get_runtime_context().get_node_id(), np.full(n, value)

@ray.remote
def total(x):
    return ray.get_runtime_context().get_node_id(), float(x.sum())

# results made on other nodes come to the head's node
outs = ray.get([make.remote(3_000_000, float(i)) for i in range(6)])
record("made_elsewhere", any(node != head_node for node, _ in outs))
record("values", [float(arr[0]) for _, arr in outs])
record("sizes", [arr.size for _, arr in outs])
# a put on the head's node goes to tasks on other nodes
big = ray.put(np.arange(3_000_000, dtype=np.float64))
sums = ray.get([total.remote(big) for _ in range(6)])
record("read_elsewhere", any(node != head_node for node, _ in sums))
record("sums", sorted({s for _, s in sums}))
# an object made on one node, consumed on another, never through the head
@ray.remote
def chain(n):
    inner = make.remote(n, 3.0)
    return ray.get(total.remote(ray.get(inner)[1]))[1]
record("chain", ray.get(chain.remote(2_000_000)))
