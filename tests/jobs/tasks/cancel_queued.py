"""Job of tests/test_tasks.py::test_cancel_queued_task."""
import os, sys, time
import hpcray as ray
from jobkit import check, record

marker = sys.argv[1]

@ray.remote
def sleeper(t):
    time.sleep(t)
    return t

@ray.remote
def victim(path):
    open(path, "w").close()
    return "victim-ran"

@ray.remote
def quick(x):
    return x

cpus = int(ray.cluster_resources().get("CPU", 1))
blockers = [sleeper.remote(1.0) for _ in range(2 * max(1, cpus))]
v = victim.remote(marker)
ray.cancel(v)

@check
def get_cancelled():
    return ray.get(v, timeout=30)

@check
def wait_reports_cancelled_ready():
    ready, not_ready = ray.wait([v], timeout=10)
    return len(ready)

record("blockers", ray.get(blockers))
time.sleep(0.5)
record("victim_ran", os.path.exists(marker))

done = quick.remote("q")
ray.get(done)

@check
def cancel_finished_is_noop():
    ray.cancel(done)
    return ray.get(done)

record("after", ray.get(quick.remote("still-works")))
