"""Job of tests/test_copy_tree.py::test_an_object_wanted_everywhere_reaches_nodes_by_a_tree."""
import time
import numpy as np
import hpcray as ray
from jobkit import on_rank, record, runtime

@ray.remote
def read(box, start_at):
    time.sleep(max(0.0, start_at - time.time()))    # every node asks at the same moment
    a = ray.get(box[0])
    return runtime().job.node_index, int(a[0]), int(a[-1]), int(a[::4096].sum())

@ray.remote
def served():
    return on_rank(lambda rt: (rt.job.node_index, rt.copies.served))

nodes = len(ray.nodes())
n = 16_000_000                                      # 128 MB
ref = ray.put(np.arange(n, dtype=np.int64))
start_at = time.time() + 1.0
out = ray.get([read.submit(([ref], start_at), {}, node_hint=i) for i in range(1, nodes)])
record("nodes_read", sorted(o[0] for o in out))
record("values", sorted({o[1:] for o in out}))
record("expected", (0, n - 1, int(np.arange(n, dtype=np.int64)[::4096].sum())))
record("home_served", runtime().copies.served)
counts = ray.get([served.submit((), {}, node_hint=i) for i in range(1, nodes)])
record("worker_served", sorted(c for _, c in counts))
