"""Job of tests/test_tasks.py::test_tasks_spread_over_workers."""
import time
import hpcray as ray
from jobkit import record

@ray.remote
def where(t):
    time.sleep(t)
    return ray.get_runtime_context().get_rank()

record("ranks", sorted(set(ray.get([where.remote(0.3) for _ in range(12)]))))
