"""Three tasks on three ranks of one node; the third one started grows until the node's
memory is above the threshold. The node's memory monitors end one task at a time, the
newest (as Ray's monitor does): not the task of whichever rank looks first, nor one per
rank. The two older tasks run once and finish; the newest is retried and, its retries
spent, fails with OutOfMemoryError. argv[1]: a directory for marks."""
import sys
import time

import numpy as np

import hpcray as ray
from jobkit import check, count, record

MARKS = sys.argv[1]
CHUNK = 256 << 20


def mark(name):
    return count(MARKS, name)


@ray.remote(max_retries=1)
def wait(name, seconds):
    attempts = mark(name)
    time.sleep(seconds)
    return attempts, ray.get_runtime_context().get_rank()


@ray.remote(max_retries=1)
def grow(name):
    mark(name)
    chunks = []
    for _ in range(16):                        # up to 4 GiB, 256 MiB every 0.1 s
        chunks.append(np.ones(CHUNK // 8))
        time.sleep(0.1)
    return "never stopped"


older = [wait.remote("wait0", 8), wait.remote("wait1", 7)]
time.sleep(1.0)                                # the grower is the newest task of the node
newest = grow.remote("grow")


@check
def older_ones():
    return ray.get(older, timeout=120)


@check
def newest_one():
    return ray.get(newest, timeout=120)


record("newest_attempts", mark("grow") - 1)
