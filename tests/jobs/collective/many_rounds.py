"""Job of tests/test_collective.py::test_many_rounds_never_hang."""
import numpy as np
from mpi4py import MPI
import hpcray as ray
from hpcray.util import collective as col
from jobkit import record

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
