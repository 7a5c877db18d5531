"""A worker rank is SIGKILLed mid-job: the job goes on. The tasks it held run again on the
other ranks, nothing hangs, and the script ends with its own status. argv[1]: a file where
the dying rank writes when it dies."""
import os
import signal
import sys
import time

import hpcray as ray
from jobkit import rank_pid, record

MARK = sys.argv[1]


@ray.remote
def square(x):
    time.sleep(0.2)
    return x * x


@ray.remote(max_retries=0)
def die(mark):
    with open(mark, "w") as file:
        file.write(repr((time.time(), ray.get_runtime_context().get_rank())))
    os.kill(rank_pid(), signal.SIGKILL)                 # the rank, not the task's process


refs = [square.remote(i) for i in range(12)]            # spread over every worker rank
dying = die.remote(MARK)
record("squares", ray.get(refs, timeout=60))
try:
    ray.get(dying, timeout=60)
except Exception as error:
    record("dying_task", type(error).__name__)
killed_at, victim = eval(open(MARK).read())
deadline = time.time() + 30
while not any(not node["Alive"] for node in ray.nodes()) and time.time() < deadline:
    time.sleep(0.005)
record("detect_seconds", time.time() - killed_at)
record("victim", victim)
record("dead", [rank for node in ray.nodes() if not node["Alive"] for rank in node["Ranks"]])
record("after", ray.get([square.remote(i) for i in range(6)], timeout=60))
ranks = {r for r in ray.get([ray.remote(lambda: ray.get_runtime_context().get_rank()).remote()
                             for _ in range(12)], timeout=60)}
record("ranks_after", sorted(ranks))
