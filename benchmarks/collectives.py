"""Reductions and actor collectives, against their baselines.

    mpiexec -n 4 python -m hpcray --ranks-per-node 2 benchmarks/collectives.py
        hpcray.reduce of 16 arrays of 8 MB made on 2 simulated nodes, against Ray's tree of
        ``add`` tasks (same job), in ms
    mpiexec -n 5 python -m hpcray benchmarks/collectives.py --allreduce
        allreduce of 100 MB among 4 actors (hpcray.util.collective), in ms
    mpiexec -n 4 python benchmarks/collectives.py --mpi4py
        the same allreduce as a bare mpi4py ``Allreduce`` among 4 ranks, in ms
"""
import statistics
import sys
import time

import numpy as np

MB8 = 1_000_000                 # float64 elements in 8 MB
MB100 = 12_500_000              # float64 elements in 100 MB


def bare_mpi4py(reps=7):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    data, out = np.ones(MB100), np.empty(MB100)
    times = []
    for _ in range(reps):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(data, out)
        times.append(comm.allreduce(time.perf_counter() - start, op=MPI.MAX))
    if comm.Get_rank() == 0:
        print(f"mpi4py Allreduce 100 MB x {comm.Get_size()} ranks: "
              f"{statistics.median(times) * 1e3:.1f} ms (median of {reps})")


def actor_allreduce(reps=7):
    import hpcray as ray
    from hpcray.util import collective

    @ray.remote(num_cpus=1)
    class Member:
        def __init__(self, rank, world):
            self.data = np.ones(MB100)
            collective.init_collective_group(world, rank, group_name="bench")

        def run(self, reps):
            times = []
            for _ in range(reps):
                collective.barrier(group_name="bench")
                start = time.perf_counter()
                collective.allreduce(self.data, group_name="bench")
                times.append(time.perf_counter() - start)
            return times
    world = int(ray.cluster_resources()["CPU"])
    members = [Member.remote(i, world) for i in range(world)]
    runs = ray.get([m.run.remote(reps) for m in members])
    slowest = [max(run[i] for run in runs) for i in range(reps)]
    print(f"hpcray.util.collective allreduce 100 MB x {world} actors: "
          f"{statistics.median(slowest) * 1e3:.1f} ms (median of {reps})")


def reductions(reps=10):
    import hpcray as ray

    @ray.remote
    def make(i):
        return np.full(MB8, float(i))

    @ray.remote
    def add(a, b):
        return a + b
    refs = [make.remote(i) for i in range(16)]
    ray.wait(refs, num_returns=len(refs))
    expected = float(sum(range(16))) * MB8

    def tree():
        level = list(refs)
        while len(level) > 1:
            level = [add.remote(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]
    for name, make_ref in (("hpcray.reduce", lambda: ray.reduce(refs)),
                           ("tree of add tasks", tree)):
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            total = ray.get(make_ref())
            times.append(time.perf_counter() - start)
            assert float(total.sum()) == expected
            del total
        print(f"{name}, 16 x 8 MB on {len(ray.nodes())} node(s): "
              f"{statistics.median(times) * 1e3:.1f} ms (median of {reps})")


if __name__ == "__main__":
    if "--mpi4py" in sys.argv:
        bare_mpi4py()
    elif "--allreduce" in sys.argv:
        actor_allreduce()
    else:
        reductions()
