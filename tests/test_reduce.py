"""hpcray.reduce: every op and callables against numpy on 1, 2 and 4 simulated nodes, uneven
counts, inputs still computing, Python ints, failures, shape errors, and proof that inputs are
combined on the nodes where they live (zero-copy), also when a worker reduces. The planning
and folding functions are tested in-process too."""
import functools
import math
import operator

import numpy as np
import pytest

from hpcray import reduction

# ---------------------------------------------------------------------------------------------
# In-process: planning and folding (no MPI job)


def test_groups_put_the_callers_node_first_and_unknown_inputs_with_the_largest():
    locations = [1, 1, 2, None, 0, 0, 0, None]
    # the caller's node 0 runs tasks: it comes first (the root lands there)
    groups = reduction.group_by_node(locations, here=0, running={0, 1, 2})
    assert [node for node, _ in groups] == [0, 1, 2]
    assert groups[0][1] == [3, 4, 5, 6, 7]          # the unknown ones joined the largest
    # a node that runs no task (the head's, alone) goes last
    groups = reduction.group_by_node(locations, here=0, running={1, 2})
    assert [node for node, _ in groups] == [1, 2, 0]
    assert sorted(i for _, members in groups for i in members) == list(range(8))
    assert reduction.group_by_node([None, None]) == [(None, [0, 1])]
    assert reduction.group_by_node([3]) == [(3, [0])]


@pytest.mark.parametrize("count", range(1, 18))
def test_tree_has_log2_levels_and_pairs_every_partial_once(count):
    levels = reduction.tree_levels(count)
    assert len(levels) == math.ceil(math.log2(count))
    alive = list(range(count))
    for level in levels:
        assert [left for left, _ in level] == list(range(0, len(alive), 2))
        alive = [alive[left] if right is None else (alive[left], alive[right])
                 for left, right in level]
    assert len(alive) == 1


def test_combine_matches_numpy():
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_):
        for size in (1, 5, 65_537):
            arrays = [rng.integers(0, 3, size).astype(dtype) for _ in range(5)]
            for ufunc in (np.add, np.multiply, np.minimum, np.maximum):
                got = reduction.combine(ufunc, *arrays)
                want = functools.reduce(ufunc, arrays)     # pairwise: int32 stays int32
                assert got.dtype == want.dtype and np.array_equal(got, want), (dtype, size, ufunc)
    arrays = [rng.random((3, 4, 5)) for _ in range(3)]
    assert np.allclose(reduction.combine(np.add, *arrays), sum(arrays))
    assert np.array_equal(reduction.combine(np.add, *[a.T for a in arrays]), sum(arrays).T)
    assert np.array_equal(reduction.combine(np.divide, np.arange(1, 4), np.arange(1, 4)),
                          np.ones(3))          # a ufunc whose result dtype differs


def test_combine_python_numbers_broadcasting_callables_and_errors():
    assert reduction.combine(np.add, 2 ** 70, 3, 4) == 2 ** 70 + 7
    assert type(reduction.combine(np.add, 1, 2)) is int
    assert reduction.combine(np.multiply, 2, 3, 4.5) == 27.0
    assert math.isnan(reduction.combine(np.minimum, 3, float("nan"), 1))
    assert reduction.combine(np.maximum, 1, 5, 2) == 5
    assert np.array_equal(reduction.combine(np.add, np.ones(3), np.ones((2, 3)), 1),
                          np.full((2, 3), 3.0))
    assert reduction.combine(operator.add, "a", "b", "c") == "abc"
    assert reduction.combine(lambda a, b: a * b, 2, 3, 4) == 24
    single = np.arange(3)
    assert reduction.combine(np.add, single) is single
    with pytest.raises(ValueError, match=r"cannot combine .*shape \(3,\).*shape \(4,\)"):
        reduction.combine(np.add, np.ones(3), np.ones(4))


def test_op_and_argument_errors_are_raised_before_anything_runs():
    with pytest.raises(ValueError, match="unknown reduce op 'avg'"):
        reduction.resolve_op("avg")
    with pytest.raises(TypeError, match="binary callable"):
        reduction.resolve_op(3)
    with pytest.raises(TypeError, match="list of ObjectRefs"):
        reduction.reduce("abc")
    with pytest.raises(TypeError, match="expects ObjectRefs, got int"):
        reduction.reduce([1, 2])
    with pytest.raises(ValueError, match="empty"):
        reduction.reduce([])
    assert reduction.resolve_op("sum") is np.add


# ---------------------------------------------------------------------------------------------
# Real MPI jobs

OPS = """
import operator, time
import numpy as np
import hpcray as ray
from hpcray.core import current
rt = current.runtime()

N = 300_000                                   # 2.4 MB per array: stored, not inline

@ray.remote
def make(i):
    time.sleep(0.05)                          # long enough to spread over every rank
    return np.random.default_rng(i).integers(1, 4, N).astype(np.float64)

refs = [make.remote(i) for i in range(7)]     # uneven: 7 inputs
ray.wait(refs, num_returns=len(refs))
with rt.lock:
    record("input_nodes", len({rt.submitter.locate(ref.id) for ref in refs}))
arrays = ray.get(refs)
ops = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum,
       "np.maximum": np.maximum, "operator.add": np.add, "lambda": np.minimum}
given = {"np.maximum": np.maximum, "operator.add": operator.add,
         "lambda": lambda a, b: np.minimum(a, b)}
for name, ufunc in ops.items():
    want = ufunc.reduce(np.stack(arrays), axis=0)
    for count in (1, 2, 7):
        got = ray.get(ray.reduce(refs[:count], given.get(name, name)))
        want = ufunc.reduce(np.stack(arrays[:count]), axis=0)
        record(f"{name}_{count}", bool(got.shape == want.shape and np.array_equal(got, want)))
# the driver's own puts (on its node) mixed with task results
mixed = refs + [ray.put(np.full(N, 2.0)), ray.put(np.full(N, 3.0))]
record("mixed", bool(np.array_equal(ray.get(ray.reduce(mixed)), sum(arrays) + 5.0)))
"""


@pytest.mark.parametrize("n, per_node, nodes", [(4, 4, 1), (4, 2, 2), (5, 1, 4)],
                         ids=["1-node", "2-nodes", "4-nodes"])
def test_every_op_against_numpy(run_job, n, per_node, nodes):
    res = run_job(OPS, n=n, timeout=180, env={"HPCRAY_RANKS_PER_NODE": per_node})
    res.assert_ok()
    assert res.value("input_nodes") == nodes
    for name in ("sum", "prod", "min", "max", "np.maximum", "operator.add", "lambda"):
        for count in (1, 2, 7):
            assert res.value(f"{name}_{count}") is True, (name, count)
    assert res.value("mixed") is True


SEMANTICS = """
import time
import numpy as np
import hpcray as ray
from hpcray.exceptions import TaskError

@ray.remote
def slow(i, delay):
    time.sleep(delay)
    return np.full(400_000, float(i))

@ray.remote
def number(i):
    return i

@ray.remote
def fails(i):
    time.sleep(0.2)
    raise ValueError(f"input {i} broke")

@check
def still_computing():
    start = time.perf_counter()
    refs = [slow.remote(i, 0.5) for i in range(6)]
    ref = ray.reduce(refs)
    submitted = time.perf_counter() - start
    value = ray.get(ref)
    return [submitted < 0.3, float(value[0]), value.shape[0], float(value[-1])]

@check
def python_ints():
    refs = [ray.put(i) for i in range(1, 7)] + [number.remote(2 ** 70)]
    total = ray.get(ray.reduce(refs))
    return [total == 21 + 2 ** 70, type(total).__name__, ray.get(ray.reduce(refs[:6], "prod")),
            ray.get(ray.reduce(refs, "min")), ray.get(ray.reduce(refs, "max")) == 2 ** 70]

@check
def single_ref_is_a_copy():
    ref = slow.remote(4, 0.0)
    out = ray.reduce([ref])
    return [out != ref, float(ray.get(out)[0]), float(ray.get(ray.reduce(ref))[0])]

@check
def same_ref_twice():
    ref = slow.remote(3, 0.0)
    return float(ray.get(ray.reduce([ref, ref, ref], "sum"))[0])

@check
def failed_input():
    refs = [slow.remote(i, 0.0) for i in range(5)] + [fails.remote(9)]
    return ray.get(ray.reduce(refs))

@check
def failed_input_is_task_error():
    try:
        ray.get(ray.reduce([fails.remote(1), slow.remote(1, 0.0)]))
    except TaskError as error:
        return isinstance(error, ValueError)

@check
def different_lengths():
    return ray.get(ray.reduce([slow.remote(1, 0.0), ray.put(np.ones(300_000))]))

@check
def broadcasting():
    refs = [ray.put(np.ones(3)), ray.put(np.arange(6.0).reshape(2, 3)), ray.put(2.0)]
    return ray.get(ray.reduce(refs)).tolist()

@check
def empty():
    return ray.reduce([])

@check
def not_refs():
    return ray.reduce([1, 2])

@check
def unknown_op():
    return ray.reduce([ray.put(1)], "avg")
"""


def test_semantics_and_errors(run_job):
    res = run_job(SEMANTICS, n=4, timeout=180, env={"HPCRAY_RANKS_PER_NODE": 2})
    res.assert_ok()
    assert res.value("still_computing") == [True, 15.0, 400_000, 15.0]
    assert res.value("python_ints") == [True, "int", 720, 1, True]
    assert res.value("single_ref_is_a_copy") == [True, 4.0, 4.0]
    assert res.value("same_ref_twice") == 9.0
    error = res.error("failed_input")
    assert "ValueError" in error["mro"] and "TaskError" in error["mro"]
    assert "input 9 broke" in error["msg"]
    assert res.value("failed_input_is_task_error") is True
    error = res.error("different_lengths")
    assert "ValueError" in error["mro"]
    assert "cannot combine" in error["msg"] and "(400000,)" in error["msg"]
    assert "(300000,)" in error["msg"]
    assert res.value("broadcasting") == [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    assert res.error("empty")["type"] == "ValueError"
    assert res.error("not_refs")["type"] == "TypeError"
    assert "avg" in res.error("unknown_op")["msg"]
    assert res.error("unknown_op")["type"] == "ValueError"


LOCALITY = """
import time
import numpy as np
import hpcray as ray
from hpcray.core import current

N = 300_000

@ray.remote
class Log:
    def __init__(self):
        self.calls = []
    def add(self, call):
        self.calls.append(call)
    def take(self):
        calls, self.calls = self.calls, []
        return calls

@ray.remote(num_returns=2)
def make(i, delay):
    time.sleep(delay)
    a = np.full(N, float(i))
    a[-1] = 0.5                                # marks an input: combined values end >= 1
    return a, current.runtime().job.node_index

def traced_add(a, b):
    rt = current.runtime()
    args = [[float(x[0]) if x[-1] == 0.5 else None,        # which input, if one
             bool(np.shares_memory(x, rt.store.data))]     # read in place from this node
            for x in (a, b)]
    ray.get(ray.get_actor("reduce-log").add.remote([rt.job.node_index, args]))
    return a + b

log = Log.options(name="reduce-log").remote()

def run(count, ready):
    made = [make.remote(i, 0.05 if ready else 0.4) for i in range(count)]
    refs = [ref for ref, _ in made]
    if ready:
        ray.wait(refs, num_returns=count)
    total = ray.get(ray.reduce(refs, traced_add))  # (when not ready: submitted at once)
    nodes = ray.get([node for _, node in made])
    return summary(nodes, total, ray.get(log.take.remote()))

def summary(nodes, total, calls):
    # An input alone on its node is not combined there: it moves once, as a partial result.
    alone = {node for node in nodes if nodes.count(node) == 1}
    inputs, pair_nodes = {}, []                # input -> (node it was combined on, in place)
    for node, args in calls:
        originals = [(int(i), zero_copy) for i, zero_copy in args
                     if i is not None and nodes[int(i)] not in alone]
        if not originals:
            pair_nodes.append(node)
        for index, zero_copy in originals:
            inputs[index] = (node, zero_copy)
    count = len(nodes)
    return {"right": bool(np.array_equal(total[:-1], np.full(N - 1, count * (count - 1) / 2))),
            "calls": len(calls), "input_nodes": sorted(set(nodes)),
            "seen": sorted(inputs) == [i for i, node in enumerate(nodes) if node not in alone],
            "where_they_live": all(inputs[i][0] == nodes[i] for i in inputs),
            "zero_copy": all(zero_copy for _, zero_copy in inputs.values()),
            "pair_nodes": sorted(set(pair_nodes)), "pairs": len(pair_nodes),
            "caller_node": current.runtime().job.node_index}

@ray.remote
def nested(count):                             # the same, reduced by a worker
    return run(count, ready=True)

record("pending", run(8, ready=False))         # 2 per rank: all placed at once, with room
record("ready", run(12, ready=True))
record("worker", ray.get(nested.remote(9)))
"""


@pytest.mark.parametrize("n, per_node, nodes", [(5, 2, [0, 1, 2]), (5, 1, [1, 2, 3, 4])],
                         ids=["3-nodes", "4-nodes"])
def test_inputs_are_combined_where_they_live(run_job, n, per_node, nodes):
    res = run_job(LOCALITY, n=n, timeout=180, env={"HPCRAY_RANKS_PER_NODE": per_node})
    res.assert_ok()
    for who, count in (("pending", 8), ("ready", 12), ("worker", 9)):
        got = res.value(who)
        assert got["right"] is True, (who, got)
        if who != "worker":                    # spread over every node that runs tasks
            assert got["input_nodes"] == nodes, (who, got)
        else:                                  # a worker places some on its own node first
            assert set(got["input_nodes"]) <= set(nodes) and len(got["input_nodes"]) > 1, got
        assert got["seen"] is True, (who, got)                 # every input was combined...
        assert got["where_they_live"] is True, (who, got)      # ...on its own node...
        assert got["zero_copy"] is True, (who, got)            # ...read in place
        assert got["calls"] == count - 1, (who, got)           # one call per combination
        assert got["pairs"] == len(got["input_nodes"]) - 1, (who, got)   # the tree
        assert set(got["pair_nodes"]) <= set(got["input_nodes"]), (who, got)
        # Pairs run on their left input's node: the even positions of the first level (m // 2
        # nodes), the first being the caller's (when it runs tasks), where the root lands. With
        # inputs pending those nodes may be full, and the head places pairs elsewhere.
        if who != "pending":
            assert len(got["pair_nodes"]) == len(got["input_nodes"]) // 2, (who, got)
            if got["caller_node"] in got["input_nodes"]:
                assert got["caller_node"] in got["pair_nodes"], (who, got)


def test_embedded_driver(run_job):
    """The embedded driver is a node of its own and runs no task: its puts are combined on
    a worker's node."""
    res = run_job("""
        import numpy as np
        import hpcray as ray
        ray.init(num_cpus=2)
        @ray.remote
        def make(i):
            return np.full(500_000, float(i))
        refs = [make.remote(i) for i in range(4)] + [ray.put(np.full(500_000, 10.0))]
        record("sum", float(ray.get(ray.reduce(refs))[0]))
        record("max", float(ray.get(ray.reduce(refs, "max"))[-1]))
        ray.shutdown()
        """, embedded=True, timeout=90)
    res.assert_ok()
    assert res.value("sum") == 16.0
    assert res.value("max") == 10.0
