"""hpcray.util.collective: every collective against numpy, members on 1, 2 and 4 (simulated)
nodes, two members on one rank, a group declared from the driver, mismatches; torch tensors where torch is installed."""
import pytest


@pytest.mark.parametrize("ranks, per_node", [(4, 4), (5, 2), (5, 1)],
                         ids=["1-node", "2-nodes", "4-nodes"])
def test_collectives(run_job, ranks, per_node):
    res = run_job("collective/group.py", n=ranks, timeout=150, env={"HPCRAY_RANKS_PER_NODE": per_node})
    res.assert_ok()
    world = 5
    info = res.value("info")
    assert [row[:3] for row in info] == [[r, world, True] for r in range(world)]
    assert len({row[3] for row in info}) < world          # some rank hosts two members
    for op in ("sum", "prod", "min", "max"):
        assert res.value("allreduce_" + op) is True, op
    assert res.value("broadcast") == [[3.0] * 4] * world
    assert res.value("allgather") == [[[float(r)] * 3 for r in range(world)]] * world
    assert res.value("reducescatter") == [[float(i * 10 * world + sum(range(world)))] * 2
                                          for i in range(world)]
    reduced = res.value("reduce")
    assert reduced[1] == [15.0, 15.0]
    assert [reduced[r] for r in (0, 2, 3, 4)] == [[float(r + 1)] * 2 for r in (0, 2, 3, 4)]
    assert res.value("barrier") == [True] * world
    assert res.value("ring") == [[float((r - 1) % world)] * 3 for r in range(world)]
    assert res.value("still_computing") == [[10.0, 10.0]] * world
    assert res.value("mismatch") == ["mismatch"] * world
    assert res.value("dtype_mismatch") == ["mismatch"] * world
    assert res.value("after_mismatch") == [15.0, 20.0]          # the group still works
    assert res.value("declared") == [[6.0, 9.0]] * 3


def test_torch_tensors(run_job):
    """torch CPU tensors are reduced in place (skipped where torch is not installed; a GPU
    tensor takes the same path staged through host memory)."""
    pytest.importorskip("torch")
    res = run_job("collective/torch_tensors.py", n=3, timeout=120)
    res.assert_ok()
    assert res.value("out") == [[3.0] * 4 + [1.0, 1.0]] * 2


def test_many_rounds_never_hang(run_job):
    """Hundreds of back-to-back rounds complete. MPICH 5 at MPI_THREAD_SERIALIZED sometimes
    never completed a non-blocking collective polled by one thread while the rank's progress
    thread made other MPI calls (job.import_mpi): this loop hung about one run in four."""
    res = run_job("collective/many_rounds.py", n=5, timeout=240)   # (~70 s alone on 2 cores)
    res.assert_ok()
    assert res.value("thread_level") is True
    assert res.value("out") == [4.0] * 4
