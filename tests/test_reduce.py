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


@pytest.mark.parametrize("n, per_node, nodes", [(4, 4, 1), (4, 2, 2), (5, 1, 4)],
                         ids=["1-node", "2-nodes", "4-nodes"])
def test_every_op_against_numpy(run_job, n, per_node, nodes):
    res = run_job("reduce/ops_vs_numpy.py", n=n, timeout=180, env={"HPCRAY_RANKS_PER_NODE": per_node})
    res.assert_ok()
    assert res.value("input_nodes") == nodes
    for name in ("sum", "prod", "min", "max", "np.maximum", "operator.add", "lambda"):
        for count in (1, 2, 7):
            assert res.value(f"{name}_{count}") is True, (name, count)
    assert res.value("mixed") is True


def test_semantics_and_errors(run_job):
    res = run_job("reduce/semantics.py", n=4, timeout=180, env={"HPCRAY_RANKS_PER_NODE": 2})
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


@pytest.mark.parametrize("n, per_node, nodes", [(5, 2, [0, 1, 2]), (5, 1, [1, 2, 3, 4])],
                         ids=["3-nodes", "4-nodes"])
def test_inputs_are_combined_where_they_live(run_job, n, per_node, nodes):
    res = run_job("reduce/locality.py", n=n, timeout=180, env={"HPCRAY_RANKS_PER_NODE": per_node})
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
    res = run_job("reduce/embedded_driver.py", embedded=True, timeout=90)
    res.assert_ok()
    assert res.value("sum") == 16.0
    assert res.value("max") == 10.0
