"""Job of tests/test_launch.py::test_uncaught_exception_while_task_sleeps_exits_fast."""
import time
import hpcray as ray

@ray.remote
def sleeper(t):
    time.sleep(t)
    return t

refs = [sleeper.remote(60) for _ in range(3)]
time.sleep(1.0)          # let the sleepers start on the workers
raise RuntimeError("driver-failed-while-tasks-run")
