"""One worker rank that advertises 4 CPUs (HPCRAY_CPUS_PER_RANK=4, as srun
--ntasks-per-node=1 --cpus-per-task=4 gives): it runs 4 tasks at once, each in a worker
process of its own."""
import os
import time

import hpcray as ray
from jobkit import record


@ray.remote
def nap(seconds):
    started = time.time()
    time.sleep(seconds)
    return ray.get_runtime_context().get_rank(), os.getpid(), started


ray.get([nap.remote(0) for _ in range(8)])            # the processes are up
results = ray.get([nap.remote(0.5) for _ in range(8)], timeout=60)
starts = sorted(start for _, _, start in results)
# Tasks running when each one started (each runs 0.5 s from its start, or a bit more).
record("at_once", max(sum(1 for other in starts if other <= start < other + 0.5)
                      for start in starts))
record("ranks", sorted({rank for rank, _, _ in results}))
record("processes", len({pid for _, pid, _ in results}))
record("cpus", ray.cluster_resources().get("CPU"))
