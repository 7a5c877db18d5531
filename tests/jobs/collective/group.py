"""Job of tests/test_collective.py::test_collectives."""
import numpy as np
import hpcray as ray
from hpcray.util import collective as col
from jobkit import record

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
