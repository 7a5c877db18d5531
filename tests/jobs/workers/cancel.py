"""Cancelling tasks that run in worker processes: KeyboardInterrupt in the task
(force=False: in a sleep, in a busy loop, in a get), the worker process ended (force=True),
and the tasks a task submitted (recursive=True). argv[1]: a directory for marks."""
import os
import sys
import time

import hpcray as ray
from jobkit import record

MARKS = sys.argv[1]


def started(name):
    with open(os.path.join(MARKS, name), "a") as file:
        file.write(f"{os.getpid()}\n")


def wait_started(name, timeout=30):
    path = os.path.join(MARKS, name)
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.01)


@ray.remote
def sleeper(name):
    started(name)
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        started(name + ".interrupted")
        raise
    return "slept"


@ray.remote
def spinner(name):
    started(name)
    while True:
        pass


@ray.remote
def never(name):
    started(name)
    time.sleep(3600)


@ray.remote
def blocked(name):
    started(name)
    return ray.get(never.remote(name + ".never"))


@ray.remote
def child(name):
    started(name)
    time.sleep(3)
    started(name + ".finished")


@ray.remote
def parent(name):
    ray.get(child.remote(name + ".child"))


def cancelled(name, ref, **options):
    wait_started(name)
    at = time.time()
    ray.cancel(ref, **options)
    try:
        value = ray.get(ref, timeout=30)
        record(name, {"value": value})
    except ray.exceptions.TaskCancelledError:
        record(name, {"cancelled": True, "seconds": time.time() - at})


cancelled("sleep", sleeper.remote("sleep"))
record("sleep_interrupted", os.path.exists(os.path.join(MARKS, "sleep.interrupted")))
cancelled("spin", spinner.remote("spin"))
get_ref = blocked.remote("get")
wait_started("get.never")                        # its child runs: cancelled with it
cancelled("get", get_ref)
cancelled("force", sleeper.remote("force"), force=True)
with open(os.path.join(MARKS, "force")) as file:
    record("force_attempts", len(file.read().split()))         # not retried
parent_ref = parent.remote("tree")
wait_started("tree.child")
ray.cancel(parent_ref, recursive=True)
try:
    ray.get(parent_ref, timeout=30)
except ray.exceptions.TaskCancelledError:
    record("tree", "cancelled")
time.sleep(4)                                    # the child would have finished by now
record("child_finished", os.path.exists(os.path.join(MARKS, "tree.child.finished")))
@ray.remote
def quick(x):
    return x * 2


@ray.remote
def noop():
    return None


@ray.remote
def blocker(name):
    started(name)
    time.sleep(1.5)
    return "done"


@ray.remote
def marked(name):
    started(name)
    return name


# Short tasks waiting behind busy processes (they may have been sent to a process ahead of
# their turn): cancelling some of them drops those, and only those, before they start.
ray.get([noop.remote() for _ in range(200)], timeout=60)   # recent tasks were short
blockers = [blocker.remote(f"blocker{i}") for i in range(2)]
for i in range(2):
    wait_started(f"blocker{i}")
queued = [marked.remote(f"queued{i}") for i in range(6)]
time.sleep(0.2)
for ref in queued[::2]:
    ray.cancel(ref)
outcome = []
for ref in queued:
    try:
        outcome.append(ray.get(ref, timeout=30))
    except ray.exceptions.TaskCancelledError:
        outcome.append("cancelled")
record("queued", outcome)
record("queued_ran", sorted(name for name in os.listdir(MARKS) if name.startswith("queued")))
record("blockers", ray.get(blockers, timeout=30))


record("after", ray.get([quick.remote(i) for i in range(6)], timeout=30))
record("healthy", all(node["Alive"] for node in ray.nodes()))
