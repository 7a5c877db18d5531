"""Three tasks on three ranks of one node hold memory; the third one started takes the
node's memory above the threshold. The node's memory monitors end one task, the newest (as
Ray's monitor does), not one per rank: the two older ones run once and finish, the newest is
retried and, its retries spent, fails with OutOfMemoryError. argv[1]: a directory for marks.
"""
import os
import sys
import time

import numpy as np

import hpcray as ray
from hpcray.workers.memory import node_memory
from jobkit import check, record

MARKS = sys.argv[1]


def mark(name):
    with open(os.path.join(MARKS, name), "a") as file:
        file.write("x\n")
    with open(os.path.join(MARKS, name)) as file:
        return len(file.read().split())


@ray.remote(max_retries=1)
def hold(name, nbytes, seconds):
    attempts = mark(name)
    data = np.ones(nbytes // 8)                # touched: resident
    time.sleep(seconds)
    return attempts, ray.get_runtime_context().get_rank(), int(data[-1])


threshold = float(os.environ["HPCRAY_MEMORY_USAGE_THRESHOLD"])
used, limit, _ = node_memory()
size = int((threshold * limit - used) / 2.5)   # two fit under the threshold, three do not
refs = []
for i in range(3):
    refs.append(hold.remote(f"hold{i}", size, 7 - 2 * i))
    time.sleep(1.0)                            # distinct start times: the last is newest


@check
def older_ones():
    return [ray.get(ref, timeout=120) for ref in refs[:2]]


@check
def newest():
    return ray.get(refs[2], timeout=120)


record("newest_attempts", mark("hold2") - 1)
