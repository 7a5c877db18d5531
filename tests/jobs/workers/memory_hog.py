"""Tasks that allocate too much: the memory monitor (HPCRAY_MEMORY_USAGE_THRESHOLD, set low
by the test) ends the worker process of the newest retriable task before the kernel's OOM
killer does; the task is retried and recovers, or fails with OutOfMemoryError once its
retries are spent; other tasks and the ranks go on. argv[1]: a directory for marks."""
import sys
import time

import numpy as np

import hpcray as ray
from jobkit import check, count, record

MARKS = sys.argv[1]
CHUNK = 256 << 20


def mark(name):
    return count(MARKS, name)


def grow(limit=16):
    """Allocate (and touch) 256 MiB every 0.1 s, up to 4 GiB."""
    chunks = []
    for _ in range(limit):
        chunks.append(np.ones(CHUNK // 8))
        time.sleep(0.1)
    return "never stopped"


@ray.remote                                       # 3 retries by default
def hog_once(name):
    attempts = mark(name)
    if attempts == 1:
        return grow()
    return attempts


@ray.remote(max_retries=1)
def hog_always(name):
    mark(name)
    return grow()


@ray.remote
def quick(x):
    time.sleep(0.05)
    return x * 2


@check
def recovered():
    started = time.time()
    ref = hog_once.remote("once")
    others = [quick.remote(i) for i in range(20)]
    return [ray.get(ref, timeout=120), ray.get(others, timeout=120), time.time() - started]


@check
def retries_spent():
    ray.get(hog_always.remote("always"), timeout=120)


record("always_attempts", mark("always") - 1)
record("ranks_alive", all(node["Alive"] for node in ray.nodes()))
record("after", ray.get([quick.remote(i) for i in range(4)], timeout=60))
