"""The node object store: zero-copy reads, freeing, churn, a full store, objects crossing
simulated nodes, configuration errors, and no files left behind."""
import pytest

ZERO_COPY = """
import numpy as np
import hpcray as ray
from hpcray.core import current
store = current.runtime().store

a = np.arange(4_000_000, dtype=np.float64)          # 32 MB: goes to the store
ref = ray.put(a)
b = ray.get(ref)
record("shares_store", bool(np.shares_memory(b, store.data)))
record("read_only", b.flags.writeable)
record("equal", bool((a == b).all()))
try:
    b[0] = 1.0
    record("write", "allowed")
except ValueError:
    record("write", "refused")

@ray.remote
def inspect(x):
    from hpcray.core import current
    s = current.runtime().store
    return [bool(np.shares_memory(x, s.data)), x.flags.writeable, float(x.sum())]
record("task_view", ray.get(inspect.remote(ref)))

@ray.remote
def make(n):
    return np.full(n, 2.0)
c = ray.get(make.remote(2_000_000))
record("result_shares_store", bool(np.shares_memory(c, store.data)))
record("result_sum", float(c.sum()))
small = ray.get(ray.put(np.arange(10)))
record("small_inline", not np.shares_memory(small, store.data))
"""


@pytest.mark.parametrize("n", [1, 3])
def test_zero_copy_reads(run_job, n):
    res = run_job(ZERO_COPY, n=n, timeout=90)
    res.assert_ok()
    assert res.value("shares_store") is True
    assert res.value("read_only") is False
    assert res.value("equal") is True
    assert res.value("write") == "refused"
    assert res.value("task_view") == [True, False, float(sum(range(4_000_000)))]
    assert res.value("result_shares_store") is True
    assert res.value("result_sum") == 4_000_000.0
    assert res.value("small_inline") is True


FREEING = """
import time
import numpy as np
import hpcray as ray
from hpcray.core import current
rt = current.runtime()

base = rt.store.in_use()
view = ray.get(ray.put(np.ones(1_000_000)))        # a view keeps its object alive...
settle()
record("view_kept", rt.store.in_use() > base)
record("view_value", float(view.sum()))
del view                                            # ...until it goes
settle()
record("after_view", rt.store.in_use() - base)

@ray.remote
def make(i):
    return np.full(500_000, float(i))

@ray.remote
def total(x):
    return float(x.sum())

refs = [make.remote(i) for i in range(8)]
record("sums", ray.get([total.remote(r) for r in refs]))
del refs
settle()
record("after_results", rt.store.in_use() - base)

# a store of 64 MB takes 10 times its size over time
for i in range(20):
    ref = ray.put(np.full(4_000_000, float(i)))     # 32 MB each
    assert float(ray.get(ref)[0]) == float(i)
    del ref
record("churn", "ok")

held = [ray.put(np.full(3_000_000, float(i))) for i in range(10)]   # 240 MB in 64 MB
record("spilled", rt.store.spilled() > 0)
record("restored", [float(ray.get(r)[0]) for r in held])          # back from disk, in order
try:
    ray.put(np.zeros(10_000_000))                                  # 80 MB can never fit
    record("too_big", "no error")
except ray.exceptions.ObjectStoreFullError as error:
    record("too_big", str(error))
views = [ray.get(held[0]), ray.get(held[1])]                       # 48 MB pinned by views
try:
    extra = [ray.put(np.zeros(3_000_000)) for _ in range(2)]       # the rest cannot make room
    record("pinned_full", "no error")
except ray.exceptions.ObjectStoreFullError as error:
    record("pinned_full", str(error))
record("views_intact", [float(v[0]) for v in views])
del held, views
settle()
record("after_full", rt.store.in_use() - base)
record("spill_files_left", rt.store.spilled())
record("still_works", float(ray.get(ray.put(np.ones(2_000_000))).sum()))
"""


@pytest.mark.parametrize("n", [1, 3])
def test_freeing_churn_spilling_and_full_store(run_job, n):
    res = run_job(FREEING, n=n, timeout=120, env={"HPCRAY_OBJECT_STORE_MEMORY": "64M"})
    res.assert_ok()
    assert res.value("view_kept") is True
    assert res.value("view_value") == 1_000_000.0
    assert res.value("after_view") == 0
    assert res.value("sums") == [500_000.0 * i for i in range(8)]
    assert res.value("after_results") == 0
    assert res.value("churn") == "ok"
    assert res.value("spilled") is True
    assert res.value("restored") == [float(i) for i in range(10)]
    message = res.value("too_big")
    assert "is full" in message and "80,000,000" in message, message
    message = res.value("pinned_full")
    assert "is full" in message and "24,000,000" in message, message
    assert res.value("views_intact") == [0.0, 1.0]
    assert res.value("after_full") == 0
    assert res.value("spill_files_left") == 0
    assert res.value("still_works") == 2_000_000.0


ACROSS_NODES = """
import numpy as np
import hpcray as ray

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
"""


@pytest.mark.parametrize("transfer", ["p2p", "rma"])
def test_objects_cross_simulated_nodes(run_job, transfer):
    res = run_job(ACROSS_NODES, n=4, timeout=120,
                  env={"HPCRAY_RANKS_PER_NODE": 2, "HPCRAY_TRANSFER": transfer})
    res.assert_ok()
    assert res.value("nodes") == 2
    assert res.value("made_elsewhere") is True
    assert res.value("values") == [float(i) for i in range(6)]
    assert res.value("sizes") == [3_000_000] * 6
    assert res.value("read_elsewhere") is True
    assert res.value("sums") == [float(sum(range(3_000_000)))]
    assert res.value("chain") == 6_000_000.0


def test_embedded_driver_objects_reach_workers(run_job):
    """The embedded driver is a node of its own: its big objects are copied to the workers."""
    res = run_job("""
        import numpy as np
        import hpcray as ray
        ray.init(num_cpus=2)
        @ray.remote
        def total(x):
            return float(x.sum())
        @ray.remote
        def make(n):
            return np.ones(n)
        ref = ray.put(np.ones(3_000_000))
        record("sums", ray.get([total.remote(ref) for _ in range(4)]))
        record("back", float(ray.get(make.remote(3_000_000)).sum()))
        ray.shutdown()
        """, embedded=True, timeout=90)
    res.assert_ok()
    assert res.value("sums") == [3_000_000.0] * 4
    assert res.value("back") == 3_000_000.0


def test_store_larger_than_dev_shm_is_a_clear_error(run_job):
    res = run_job("print('should not run')", n=2, timeout=60,
                  env={"HPCRAY_OBJECT_STORE_MEMORY": "100T"})
    assert res.returncode != 0
    assert "should not run" not in res.stdout
    assert "does not fit in /dev/shm" in res.stderr


LOCALITY = """
import numpy as np
import hpcray as ray

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
"""


def test_tasks_go_where_their_argument_bytes_are(run_job):
    res = run_job(LOCALITY, n=5, timeout=120, env={"HPCRAY_RANKS_PER_NODE": 2})
    res.assert_ok()
    assert res.value("some_elsewhere") is True
    assert all(res.value("ran_where_the_bytes_are")), res.value("ran_where_the_bytes_are")


ONE_COPY_PER_NODE = """
import time
import numpy as np
import hpcray as ray

@ray.remote
def probe(box):
    from hpcray.core import current
    rt = current.runtime()
    value = ray.get(box[0])
    time.sleep(0.2)                                  # keep ranks busy: spread the probes
    copy = rt.copies.held_copy(box[0].id)
    return (ray.get_runtime_context().get_node_id(), rt.rank,
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
"""


@pytest.mark.parametrize("transfer", ["p2p", "rma"])
def test_one_copy_per_node(run_job, transfer):
    # nodes {0 head, 1, 2}, {3, 4, 5}, {6}
    res = run_job(ONE_COPY_PER_NODE, n=7, timeout=120,
                  env={"HPCRAY_RANKS_PER_NODE": 3, "HPCRAY_TRANSFER": transfer})
    res.assert_ok()
    assert res.value("values") == [7.0]
    assert res.value("nodes_with_many_readers") >= 1
    assert set(res.value("copies_per_node")) == {1}, res.value("copies_per_node")


LARGE_ARGS = """
import time
import numpy as np
import hpcray as ray
from hpcray.core import current
rt = current.runtime()

@ray.remote
def total(x, scale=1.0):
    return float(x.sum()) * scale, x.flags.writeable

base = rt.store.in_use()
arr = np.ones(3_000_000)                                   # 24 MB passed by value
record("by_value", ray.get([total.remote(arr) for _ in range(3)]))
record("kwarg", ray.get(total.remote(x=arr, scale=2.0)))
record("small", ray.get(total.remote(np.ones(10))))
for _ in range(50):
    with rt.lock:
        rt.progress.turn()
    time.sleep(0.01)
record("freed", rt.store.in_use() - base)
"""


@pytest.mark.parametrize("n", [1, 3])
def test_large_arguments_travel_through_the_store(run_job, n):
    res = run_job(LARGE_ARGS, n=n, timeout=90)
    res.assert_ok()
    assert res.value("by_value") == [[3_000_000.0, False]] * 3
    assert res.value("kwarg") == [6_000_000.0, False]
    assert res.value("small") == [10.0, True]
    assert res.value("freed") == 0


STORE_JOB = """
import sys, time
import numpy as np
import hpcray as ray

@ray.remote
def make(n):
    return np.full(n, 1.0)

@ray.remote
def slow():
    time.sleep(60)

refs = [make.remote(1_000_000) for _ in range(4)]
ray.get(refs)
ray.put(np.ones(2_000_000))
if sys.argv[1] == "fail":
    slow.remote()
    time.sleep(0.5)
    raise RuntimeError("the script fails while a task runs")
print("DONE", sys.argv[1])
"""


def _leftovers():
    import glob
    import os
    import tempfile
    shm = {n for n in os.listdir("/dev/shm") if n.startswith(("hpcray", "mpich"))}
    spill = set(glob.glob(os.path.join(tempfile.gettempdir(), "hpcray-spill-*")))
    return shm | spill


@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_no_files_left_after_a_job(start_job, mode):
    before = _leftovers()
    job = start_job(STORE_JOB, n=3, args=(mode,), env={"HPCRAY_OBJECT_STORE_MEMORY": "64M"})
    res = job.wait(60)
    if mode == "ok":
        res.assert_ok()
    else:
        assert res.returncode != 0 and "the script fails" in res.stderr
    assert _leftovers() - before == set()


def test_two_jobs_at_once_do_not_collide(start_job):
    """Two jobs of the same user on one node: separate stores, lock files and spill dirs."""
    script = """
        import numpy as np
        import hpcray as ray
        @ray.remote
        def total(x):
            return float(x.sum())
        value = float(ray.get(ray.put(np.full(1_000_000, VALUE))).sum())
        refs = [ray.put(np.full(1_000_000, VALUE)) for _ in range(12)]   # spills in 32 MB
        record("sums", sorted({ray.get(total.remote(r)) for r in refs} | {value}))
        """
    jobs = [start_job(script.replace("VALUE", str(v)), n=2, name=f"job{v}",
                      env={"HPCRAY_OBJECT_STORE_MEMORY": "32M"}) for v in (1.0, 2.0)]
    results = [job.wait(90) for job in jobs]
    for value, res in zip((1.0, 2.0), results):
        res.assert_ok()
        assert res.value("sums") == [value * 1_000_000]
