"""Job of tests/test_launch.py::test_timeout_harness_dumps_every_rank_stack."""
import time
import hpcray as ray

@ray.remote
def sleeper_in_worker_task():
    time.sleep(1000)

ray.get(sleeper_in_worker_task.remote())
