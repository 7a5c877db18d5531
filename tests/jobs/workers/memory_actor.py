"""An actor that allocates too much: the memory monitor ends its worker process too (Ray's
monitor ends actors when no task is newer); it restarts while max_restarts allows, then dies
with the monitor's words in its ActorDiedError. Tasks and the ranks go on."""
import os
import time

import numpy as np

import hpcray as ray
from hpcray.workers.memory import node_memory
from jobkit import check, record

CHUNK = 128 << 20


@ray.remote(max_restarts=1)
class Hog:
    def __init__(self):
        self.chunks = []

    def grow(self, nbytes):
        while len(self.chunks) * CHUNK < nbytes:
            self.chunks.append(np.ones(CHUNK // 8))
            time.sleep(0.05)
        time.sleep(5)                          # the monitor looks every 250 ms
        return "survived"

    def pid(self):
        return os.getpid()


@ray.remote
def quick(x):
    return x * 2


threshold = float(os.environ["HPCRAY_MEMORY_USAGE_THRESHOLD"])
used, limit, _ = node_memory()
too_much = int((threshold * limit - used) * 1.5)
hog = Hog.remote()
first_pid = ray.get(hog.pid.remote(), timeout=60)


@check
def first_grow():
    return ray.get(hog.grow.remote(too_much), timeout=120)


record("restarted", ray.get(hog.pid.remote(), timeout=60) != first_pid)


@check
def second_grow():
    return ray.get(hog.grow.remote(too_much), timeout=120)


record("after", ray.get([quick.remote(i) for i in range(4)], timeout=60))
