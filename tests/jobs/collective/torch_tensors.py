"""Job of tests/test_collective.py::test_torch_tensors."""
import torch
import hpcray as ray
from hpcray.util import collective as col
from jobkit import record

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
