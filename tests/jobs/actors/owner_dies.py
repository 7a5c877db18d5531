"""Job of tests/test_actors.py::test_actors_die_with_their_owner: as in Ray, an actor created
by a task dies when the task's process dies, unless it is detached."""
import os
import time

import hpcray as ray
from jobkit import record


@ray.remote
class Child:
    def ping(self):
        return "pong"


@ray.remote
class Keeper:
    """Holds handles, so that no refcount ends the children: only their owner's death."""
    def __init__(self):
        self.handles = []

    def keep(self, handle):
        self.handles.append(handle)


keeper = Keeper.remote()


@ray.remote(max_retries=0)
def make_children_and_die(keeper):
    plain = Child.options(name="plain").remote()
    kept = Child.options(name="kept", lifetime="detached").remote()
    ray.get([plain.ping.remote(), kept.ping.remote()])
    ray.get([keeper.keep.remote(plain), keeper.keep.remote(kept)])
    os._exit(1)


try:
    ray.get(make_children_and_die.remote(keeper))
except ray.exceptions.WorkerCrashedError:
    pass


def state(name):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            handle = ray.get_actor(name)
        except ValueError:
            return "gone"
        try:
            ray.get(handle.ping.remote(), timeout=30)
        except ray.exceptions.ActorDiedError:
            return "ActorDiedError"
        if name == "kept":
            return "alive"
        time.sleep(0.05)                       # (the kill may be on its way)
    return "alive"


record("plain_child", state("plain"))
record("detached_child", state("kept"))
