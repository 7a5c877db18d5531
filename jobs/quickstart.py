"""hpcray quick start: tasks, a DAG of ObjectRefs, put, wait, nested tasks, and actors.

Run it inside an MPI job (rank 0 runs this script, the other ranks run the tasks)::

    mpirun -n 4 python -m hpcray jobs/quickstart.py

or on its own, where ``ray.init()`` starts local workers by itself::

    python jobs/quickstart.py

The code is plain Ray code: only the import differs.
"""
import time

import numpy as np

import hpcray as ray


def rank():
    return ray.get_runtime_context().get_rank()


@ray.remote
def square(x):
    return x * x, rank()


@ray.remote
def add(a, b):
    return a + b


@ray.remote
def chunk_sum(array, lo, hi):
    # `array` arrives as the numpy array itself: a ref passed as an argument is resolved.
    return float(array[lo:hi].sum())


@ray.remote
def slow(i):
    time.sleep(0.05 * i)
    return i


@ray.remote
def fan_out(n):
    # A task that submits tasks and waits for them (nested tasks).
    return sum(ray.get([add.remote(i, i) for i in range(n)])), rank()


@ray.remote
class Accumulator:
    """An actor: state that lives on one rank, changed by method calls in order."""

    def __init__(self):
        self.total = 0.0

    def add(self, value):
        self.total += value
        return self.total

    def where(self):
        return rank()


@ray.remote
def contribute(accumulator, values):
    # A handle passed to a task: the task calls the same actor.
    return ray.get([accumulator.add.remote(v) for v in values])[-1]


def main():
    ray.init()
    print("driver on rank", rank())

    # 1. Independent tasks.
    results = ray.get([square.remote(i) for i in range(8)])
    squares = [value for value, _ in results]
    ranks = sorted({r for _, r in results})
    print("squares:", squares, "ran on ranks", ranks)
    assert squares == [i * i for i in range(8)]

    # 2. A DAG: tasks consume the refs of other tasks; nothing is fetched in between.
    leaves = [add.remote(i, 0) for i in range(8)]
    while len(leaves) > 1:
        leaves = [add.remote(leaves[k], leaves[k + 1]) for k in range(0, len(leaves), 2)]
    total = ray.get(leaves[0])
    print("tree sum of 0..7:", total)
    assert total == sum(range(8))

    # 3. put a numpy array once; many tasks read it through its ref.
    array = np.arange(1_000_000, dtype=np.float64)
    ref = ray.put(array)
    bounds = range(0, len(array), 250_000)
    parts = ray.get([chunk_sum.remote(ref, lo, lo + 250_000) for lo in bounds])
    print("sum of a put array by 4 tasks:", sum(parts))
    assert sum(parts) == array.sum()

    # 4. wait: take results as they finish.
    pending = [slow.remote(i) for i in range(4)]
    ready, pending = ray.wait(pending, num_returns=2)
    print("first two finished:", sorted(ray.get(ready)), "still pending:", len(pending))
    ray.get(pending)

    # 5. Nested tasks.
    value, where = ray.get(fan_out.remote(10))
    print("nested: fan_out(10) =", value, "on rank", where)
    assert value == sum(2 * i for i in range(10))

    # 6. Actors: one accumulator shared by the driver and by tasks.
    acc = Accumulator.remote()
    ray.get([contribute.remote(acc, [1.0] * 10) for _ in range(4)])
    total = ray.get(acc.add.remote(0.0))
    print("actor on rank", ray.get(acc.where.remote()), "accumulated", total)
    assert total == 40.0

    print("quickstart OK")


if __name__ == "__main__":
    main()
