"""Job of tests/test_scheduling.py::test_work_stays_on_its_node_until_the_node_is_full."""
import time
import hpcray as ray
from jobkit import record

@ray.remote
def child():
    time.sleep(0.05)
    return ray.get_runtime_context().get_node_id()

@ray.remote
def parent(k):
    me = ray.get_runtime_context().get_node_id()
    return me, ray.get([child.remote() for _ in range(k)])

record("nodes", len(ray.nodes()))
for k in (2, 24):
    out = ray.get([parent.remote(k) for _ in range(4)])
    local = sum(c == me for me, kids in out for c in kids)
    total = sum(len(kids) for _, kids in out)
    record(f"local_fraction_{k}", local / total)
    record(f"child_nodes_{k}", len({c for _, kids in out for c in kids}))
