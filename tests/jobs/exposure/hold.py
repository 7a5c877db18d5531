"""A job that holds still while a test looks at it from outside (its sockets, the modes of its
files): it runs a task on every executing rank, fills its object store past capacity when
asked (objects spill to files), writes $READY_FILE, and its tasks sleep until $RELEASE_FILE
appears (60 s at most). At the end it prints the UCX_TLS its tasks and driver see."""
import os
import time

import numpy as np

import hpcray as ray

ray.init()


@ray.remote
def hold(release):
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid(), os.environ.get("UCX_TLS")


kept = []
if os.environ.get("SPILL_MB"):
    # More than the store holds: the oldest objects go to spill files.
    for _ in range(int(os.environ["SPILL_MB"]) // 4):
        kept.append(ray.put(np.ones(4 * 1024 * 1024 // 8)))
executing = max(1, int(ray.cluster_resources().get("CPU", 1)))
running = [hold.remote(os.environ["RELEASE_FILE"]) for _ in range(executing)]
time.sleep(0.5)
with open(os.environ["READY_FILE"], "w") as handle:
    handle.write("ready")
held = ray.get(running)
print("pids", sorted({pid for pid, _ in held}))
# What the user's code sees: the environment it was given (hpcray's choice of transports
# is taken back once MPI has read it).
print("UCX_TLS seen by tasks", sorted({str(tls) for _, tls in held}),
      "by the driver", os.environ.get("UCX_TLS"))
print("spilled", sum(int(ray.get(ref).sum() > 0) for ref in kept))
