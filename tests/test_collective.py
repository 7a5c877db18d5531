"""hpcray.util.collective: every collective against numpy, members on 1, 2 and 4 (simulated)
nodes, two members on one rank, a group declared from the driver, mismatches; torch tensors where torch is installed."""
import pytest

GROUP = r"""
import numpy as np
import hpcray as ray
from hpcray.util import collective as col

WORLD = 5                      # more members than worker ranks: some ranks host two

@ray.remote
class Member:
    def __init__(self, rank, world, join=True):
        self.rank, self.world = rank, world
        if join:
            col.init_collective_group(world, rank, group_name="g")
    def info(self, name):
        return [col.get_rank(name), col.get_collective_group_size(name),
                col.is_group_initialized(name), ray.get_runtime_context().get_rank()]
    def allreduce(self, name, n, op):
        a = np.arange(n, dtype=np.float64) + self.rank + 1
        col.allreduce(a, group_name=name, op=op)
        return a.tolist()
    def broadcast(self, name, src):
        a = np.full(4, float(self.rank))
        col.broadcast(a, src_rank=src, group_name=name)
        return a.tolist()
    def allgather(self, name):
        out = [np.zeros(3) for _ in range(self.world)]
        col.allgather(out, np.full(3, float(self.rank)), group_name=name)
        return [o.tolist() for o in out]
    def reducescatter(self, name):
        t = np.zeros(2)
        col.reducescatter(t, [np.full(2, float(i * 10 + self.rank)) for i in range(self.world)],
                          group_name=name)
        return t.tolist()
    def reduce(self, name, dst):
        a = np.full(2, float(self.rank + 1))
        col.reduce(a, dst_rank=dst, group_name=name)
        return a.tolist()
    def barrier(self, name):
        col.barrier(group_name=name)
        return True
    def ring(self, name):
        a = np.full(3, float(self.rank))
        nxt, prv = (self.rank + 1) % self.world, (self.rank - 1) % self.world
        if self.rank % 2 == 0:
            col.send(a, nxt, group_name=name); col.recv(a, prv, group_name=name)
        else:
            b = a.copy(); col.recv(a, prv, group_name=name); col.send(b, nxt, group_name=name)
        return a.tolist()
    def with_input(self, name, value):
        a = np.array(value, dtype=np.float64)
        col.allreduce(a, group_name=name)
        return a.tolist()
    def mismatch(self, name):
        a = np.zeros(3 if self.rank else 4)
        try:
            col.allreduce(a, group_name=name)
            return "no error"
        except col.CollectiveError as e:
            return "mismatch" if "different" in str(e) else str(e)
    def dtype_mismatch(self, name):
        a = np.zeros(3, dtype=np.float32 if self.rank == 1 else np.float64)
        try:
            col.allreduce(a, group_name=name)
            return "no error"
        except col.CollectiveError as e:
            return "mismatch" if "different" in str(e) else str(e)

@ray.remote
def slow_value(t, v):
    import time
    time.sleep(t)
    return [v, v]

members = [Member.remote(i, WORLD) for i in range(WORLD)]
record("info", ray.get([m.info.remote("g") for m in members]))
expected = np.arange(7, dtype=np.float64) * WORLD + sum(range(1, WORLD + 1))
record("allreduce_sum", all(r == expected.tolist() for r in
                            ray.get([m.allreduce.remote("g", 7, "sum") for m in members])))
for op, fn in [("prod", np.prod), ("min", np.min), ("max", np.max)]:
    rows = np.array([np.arange(3, dtype=np.float64) + r + 1 for r in range(WORLD)])
    want = fn(rows, axis=0).tolist()
    record("allreduce_" + op, all(r == want for r in
                                  ray.get([m.allreduce.remote("g", 3, op) for m in members])))
record("broadcast", ray.get([m.broadcast.remote("g", 3) for m in members]))
record("allgather", ray.get([m.allgather.remote("g") for m in members]))
record("reducescatter", ray.get([m.reducescatter.remote("g") for m in members]))
record("reduce", ray.get([m.reduce.remote("g", 1) for m in members]))
record("barrier", ray.get([m.barrier.remote("g") for m in members]))
record("ring", ray.get([m.ring.remote("g") for m in members]))
# inputs still computing: each member's argument is a task that sleeps first
record("still_computing", ray.get([m.with_input.remote("g", slow_value.remote(0.2 * i, i))
                                   for i, m in enumerate(members)]))
record("mismatch", ray.get([m.mismatch.remote("g") for m in members], timeout=120))
record("dtype_mismatch", ray.get([m.dtype_mismatch.remote("g") for m in members], timeout=120))
record("after_mismatch", ray.get([m.allreduce.remote("g", 2, "sum") for m in members])[0])

declared = [Member.remote(i, 3, join=False) for i in range(3)]
col.create_collective_group(declared, 3, [0, 1, 2], group_name="d")
record("declared", ray.get([m.allreduce.remote("d", 2, "sum") for m in declared]))
"""


@pytest.mark.parametrize("ranks, per_node", [(4, 4), (5, 2), (5, 1)],
                         ids=["1-node", "2-nodes", "4-nodes"])
def test_collectives(run_job, ranks, per_node):
    res = run_job(GROUP, n=ranks, timeout=150, env={"HPCRAY_RANKS_PER_NODE": per_node})
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
    res = run_job(r"""
        import torch
        import hpcray as ray
        from hpcray.util import collective as col

        @ray.remote
        class Member:
            def __init__(self, rank):
                self.rank = rank
                col.init_collective_group(2, rank, group_name="t")
            def run(self):
                t = torch.full((4,), float(self.rank + 1))
                col.allreduce(t, group_name="t")
                b = torch.full((2,), float(self.rank))
                col.broadcast(b, src_rank=1, group_name="t")
                return t.tolist() + b.tolist()
        members = [Member.remote(i) for i in range(2)]
        record("out", ray.get([m.run.remote() for m in members]))
        """, n=3, timeout=120)
    res.assert_ok()
    assert res.value("out") == [[3.0] * 4 + [1.0, 1.0]] * 2


def test_many_rounds_never_hang(run_job):
    """Hundreds of back-to-back rounds complete. MPICH 5 at MPI_THREAD_SERIALIZED sometimes
    never completed a non-blocking collective polled by one thread while the rank's progress
    thread made other MPI calls (job.import_mpi): this loop hung about one run in four."""
    res = run_job(r"""
        import numpy as np
        from mpi4py import MPI
        import hpcray as ray
        from hpcray.util import collective as col

        @ray.remote
        class Member:
            def __init__(self, rank):
                self.rank = rank
                col.init_collective_group(4, rank, group_name="loop")
            def run(self, rounds):
                a = np.ones(1_000_000)
                for _ in range(rounds):
                    col.barrier(group_name="loop")
                    a[:] = 1.0
                    col.allreduce(a, group_name="loop")
                return float(a[0])
        record("thread_level", MPI.Query_thread() == MPI.THREAD_MULTIPLE)
        members = [Member.remote(i) for i in range(4)]
        record("out", ray.get([m.run.remote(150) for m in members]))
        """, n=5, timeout=120)
    res.assert_ok()
    assert res.value("thread_level") is True
    assert res.value("out") == [4.0] * 4
