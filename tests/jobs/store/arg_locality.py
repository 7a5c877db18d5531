"""Job of tests/test_store.py::test_tasks_go_where_their_argument_bytes_are."""
import numpy as np
import hpcray as ray
from jobkit import record

@ray.remote
def make(n):
    return ray.get_runtime_context().get_node_id(), np.ones(n)

@ray.remote
def where(pair):
    return ray.get_runtime_context().get_node_id()

head_node = ray.get_runtime_context().get_node_id()
refs = [make.remote(2_000_000) for _ in range(8)]     # spread over the nodes
made = [(ray.get(ref)[0], ref) for ref in refs]
elsewhere = [(node, ref) for node, ref in made if node != head_node]
record("some_elsewhere", len(elsewhere) > 0)
hits = [ray.get(where.remote(ref)) == node for node, ref in elsewhere[:3]]
record("ran_where_the_bytes_are", hits)
