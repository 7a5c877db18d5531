"""How fast hpcray recovers from failures (issue 12's recovery figures).

    python -m hpcray run -n 4 benchmarks/recovery.py            # shared memory
    MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp,self python -m hpcray run -n 4 --ranks-per-node 1 \\
        benchmarks/recovery.py                                   # emulated network

Figures (median of --reps runs, except the rank's death, which happens once per job):

* ``worker_crash_to_retry_ms``: a task's worker process exits (``os._exit``) at t0; the
  retried attempt starts (on any rank) at t1: t1 - t0, detection included.
* ``actor_crash_to_next_call_ms``: an actor's process dies at t0 (``max_restarts=-1``); the
  first call that succeeds after its restart returns at t1.
* ``rank_death_detect_ms``: a worker rank is SIGKILLed at t0; ``nodes()`` shows it dead at t1.
* ``rank_death_to_rerun_ms``: the first of the tasks that were running on that rank starts
  again on another rank.
* ``lost_object_remade_ms``: with one rank per node, from the death to ``get`` returning an
  object whose only copy was in the dead node's store (made again from its lineage).
"""
import argparse
import os
import signal
import statistics
import tempfile
import time

import numpy as np

import hpcray as ray
from hpcray.launch import session


def _mark(path):
    with open(path, "a") as file:
        file.write(f"{time.time()!r}\n")
    with open(path) as file:
        return [float(line) for line in file]


@ray.remote
def crash_once(path):
    if len(_mark(path)) == 1:
        os._exit(1)
    return True


@ray.remote(max_restarts=-1)
class Phoenix:
    def ping(self):
        return True

    def crash(self, path):
        _mark(path)
        os._exit(1)


@ray.remote(num_cpus=0.5)                # (room left for the objects made again)
def long_task(path):
    _mark(path)
    time.sleep(3)
    return ray.get_runtime_context().get_rank()


@ray.remote(num_cpus=0.25)
def made(seed):
    return np.full(250_000, seed)


@ray.remote(max_retries=0, num_cpus=0.5)  # (fits next to a long task on a 1-CPU rank)
def kill_rank(rank, path):
    if ray.get_runtime_context().get_rank() == rank:
        job = session.runtime().job             # (the task's process is not the rank)
        _mark(path)
        os.kill(job.pids[job.rank], signal.SIGKILL)
    return ray.get_runtime_context().get_rank()


def worker_crash(reps, scratch):
    figures = []
    for index in range(reps):
        path = os.path.join(scratch, f"crash{index}")
        ray.get(crash_once.remote(path), timeout=60)
        first, second = _mark(path)[:2]
        figures.append((second - first) * 1000)
    return figures


def actor_crash(reps, scratch):
    actor = Phoenix.remote()
    ray.get(actor.ping.remote())
    figures = []
    for index in range(reps):
        path = os.path.join(scratch, f"actor{index}")
        try:
            ray.get(actor.crash.remote(path), timeout=60)
        except ray.exceptions.ActorUnavailableError:
            pass
        ray.get(actor.ping.remote(), timeout=60)       # waits for the restart
        figures.append((time.time() - _mark(path)[0]) * 1000)
    return figures


def rank_death(scratch):
    workers = sorted(rank for node in ray.nodes() for rank in node["Ranks"] if rank != 0)
    if len(workers) < 2:
        return None
    stored = [made.remote(i) for i in range(len(workers) * 2)]
    ray.wait(stored, num_returns=len(stored), fetch_local=False)
    paths = [os.path.join(scratch, f"long{i}") for i in range(len(workers))]
    refs = [long_task.remote(path) for path in paths]
    deadline = time.time() + 30
    while not all(os.path.exists(path) for path in paths) and time.time() < deadline:
        time.sleep(0.001)
    victim = workers[-1]
    died_path = os.path.join(scratch, "died")
    kills = [kill_rank.remote(victim, died_path) for _ in range(len(workers) * 3)]
    ray.wait(kills, num_returns=len(kills), timeout=60)     # (the one that killed: an error)
    killed_at = _mark(died_path)[0]
    deadline = time.time() + 60
    while all(node["Alive"] for node in ray.nodes()):
        if time.time() > deadline:
            raise RuntimeError("the rank's death was not seen in 60 s (several ranks per "
                               "node? run with --ranks-per-node 1)")
        time.sleep(0.0005)
    detected = (time.time() - killed_at) * 1000
    values = ray.get(stored, timeout=60)
    remade = (time.time() - killed_at) * 1000
    ray.get(refs, timeout=60)
    reruns = [stamps[1] for stamps in (_mark(path)[:-1] for path in paths) if len(stamps) > 1]
    rerun = (min(reruns) - killed_at) * 1000 if reruns else None
    assert all(int(value[0]) == i for i, value in enumerate(values))
    return detected, rerun, remade


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="hpcray-recovery-")
    rows = []
    crash = worker_crash(args.reps, scratch)
    rows.append(("worker_crash_to_retry_ms", statistics.median(crash), min(crash)))
    actor = actor_crash(args.reps, scratch)
    rows.append(("actor_crash_to_next_call_ms", statistics.median(actor), min(actor)))
    death = rank_death(scratch)
    if death is not None:
        detected, rerun, remade = death
        rows.append(("rank_death_detect_ms", detected, detected))
        if rerun is not None:
            rows.append(("rank_death_to_rerun_ms", rerun, rerun))
        rows.append(("lost_object_remade_ms", remade, remade))
    print(f"{'figure':32s} {'median':>10s} {'best':>10s}")
    for name, median, best in rows:
        print(f"{name:32s} {median:10.1f} {best:10.1f}")


if __name__ == "__main__":
    main()
