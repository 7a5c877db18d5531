"""A job that runs long enough to be watched from outside (two tasks sleep for 6 s), then
ends with an uncaught exception (tests/test_observe.py)."""
import time

import hpcray as ray

ray.init()


@ray.remote
def snooze(seconds):
    time.sleep(seconds)
    return seconds


ray.get([snooze.remote(0.01) for _ in range(4)])
ray.get([snooze.remote(6.0) for _ in range(2)])
raise RuntimeError("the script fails at its end, on purpose")
