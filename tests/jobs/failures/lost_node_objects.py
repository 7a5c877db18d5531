"""A node dies with the only copy of objects its tasks made for owners elsewhere: the owners
run those tasks again (lineage reconstruction, as in Ray) and get returns the value, for the
owner, for a task that borrows the ref, and for a task that takes it as an argument; a task
whose retries are spent fails instead. Run with one rank per node. argv[1]: a directory for
marks."""
import os
import signal
import sys
import time

import numpy as np

import hpcray as ray
from jobkit import rank_pid, record

MARKS = sys.argv[1]


def mark(name, text=""):
    with open(os.path.join(MARKS, name), "a") as file:
        file.write(f"{text}\n")
    with open(os.path.join(MARKS, name)) as file:
        return file.read().split()


@ray.remote
def make(name, seed):
    """A large result (stored in the executor's node), and where it was made."""
    mark(name, str(ray.get_runtime_context().get_rank()))
    return np.full(500_000, seed, dtype=np.int64)


@ray.remote(max_retries=0)
def make_once(name):
    mark(name, str(ray.get_runtime_context().get_rank()))
    return np.zeros(500_000)


@ray.remote
def total(array):
    return int(array.sum())


@ray.remote
def borrow_and_get(refs):
    return int(ray.get(refs[0]).sum())


@ray.remote
def kill_rank(rank):
    if ray.get_runtime_context().get_rank() == rank:
        os.kill(rank_pid(), signal.SIGKILL)
    time.sleep(0.2)
    return ray.get_runtime_context().get_rank()


refs = [make.remote(f"made{i}", i) for i in range(6)]
onces = [make_once.remote(f"once{i}") for i in range(6)]
ray.wait(refs + onces, num_returns=12, timeout=60, fetch_local=False)
makers = {i: int(mark(f"made{i}")[0]) for i in range(6)}   # (mark adds an empty line)
once_makers = [int(mark(f"once{i}")[0]) for i in range(6)]
victim = max(set(makers.values()), key=list(makers.values()).count)
on_victim = [i for i, rank in makers.items() if rank == victim]
record("on_victim", len(on_victim))
started = time.time()
ray.get([kill_rank.remote(victim) for _ in range(9)], timeout=60)
deadline = time.time() + 30
while all(node["Alive"] for node in ray.nodes()) and time.time() < deadline:
    time.sleep(0.005)
record("owner_get", [int(array[0]) for array in ray.get(refs, timeout=60)])
record("as_argument", ray.get([total.remote(ref) for ref in refs], timeout=60))
record("borrowed", ray.get([borrow_and_get.remote([ref]) for ref in refs], timeout=60))
record("seconds", time.time() - started)
record("runs", [len(mark(f"made{i}")) for i in range(6)])   # (an empty line: no run)
record("victim_made", on_victim)
outcomes = []
for ref, maker in zip(onces, once_makers):
    try:
        ray.get(ref, timeout=60)
        outcomes.append([maker == victim, "got it"])
    except Exception as error:
        outcomes.append([maker == victim, type(error).__name__, str(error)])
record("once", outcomes)
