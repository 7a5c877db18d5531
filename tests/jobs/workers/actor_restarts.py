"""Actors whose worker process dies, with Ray's semantics: restarted while max_restarts allows
(__init__ again with the same arguments); the calls that were there run again while
max_task_retries allows, else fail with ActorUnavailableError (the actor comes back); calls
made while it restarts wait for it; out of restarts, ActorDiedError with the cause; a
failing __init__ on a restart ends it; a crash never takes the rank down. argv[1]: a
directory for marks."""
import ctypes
import os
import signal
import sys
import time

import hpcray as ray
from hpcray.exceptions import ActorDiedError, ActorUnavailableError
from jobkit import check, count, record

MARKS = sys.argv[1]


def mark(name):
    return count(MARKS, name)


@ray.remote
class Counter:
    def __init__(self, name, start):
        self.name = name
        self.builds = mark(name + ".init")
        self.value = start

    def add(self, amount):
        self.value += amount
        return self.value

    def builds_so_far(self):
        return self.builds

    def pid(self):
        return os.getpid()

    def crash(self, how="exit"):
        if how == "segfault":
            ctypes.string_at(0)
        elif how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(1)

    def crash_first_time(self):
        if mark(self.name + ".call") == 1:
            os._exit(1)
        return ("survived", self.value)


def unavailable(ref):
    """The ActorUnavailableError text of a call cut short by its actor's restart."""
    try:
        ray.get(ref, timeout=60)
    except ActorUnavailableError as error:
        return str(error)
    return None


def died(ref, cause=ray.exceptions.WorkerCrashedError):
    try:
        ray.get(ref, timeout=60)
    except ActorDiedError as error:
        assert isinstance(error.cause, cause), repr(error.cause)
        return str(error)
    return None


@check
def restarts_with_same_arguments():
    actor = Counter.options(max_restarts=2).remote("same", 10)
    first_pid = ray.get(actor.pid.remote())
    assert ray.get(actor.add.remote(5)) == 15
    crash = unavailable(actor.crash.remote())   # max_task_retries=0: not run again
    assert crash and "may or may not have run" in crash, crash
    value = ray.get(actor.add.remote(1), timeout=60)       # waits; state from __init__
    return [value, ray.get(actor.builds_so_far.remote()), first_pid != ray.get(
        actor.pid.remote())]


@check
def running_call_retried():
    actor = Counter.options(max_restarts=1, max_task_retries=1).remote("retried", 3)
    return ray.get(actor.crash_first_time.remote(), timeout=60)


@check
def restarts_run_out():
    actor = Counter.options(max_restarts=1).remote("runs_out", 0)
    unavailable(actor.crash.remote())
    ray.get(actor.add.remote(1), timeout=60)    # restarted once
    last = died(actor.crash.remote("kill"))
    later = died(actor.add.remote(1))
    return [bool(last), later]


@check
def restarts_forever():
    actor = Counter.options(max_restarts=-1).remote("forever", 0)
    for _ in range(4):
        assert unavailable(actor.crash.remote())
    return ray.get(actor.add.remote(2), timeout=60)


@check
def without_restarts_the_actor_dies_with_the_cause():
    actor = Counter.remote("once", 0)
    ray.get(actor.add.remote(1))
    try:
        ray.get(actor.crash.remote("segfault"), timeout=60)
    except ActorDiedError as error:
        first = [str(error), error.cause.exit_code]
    return [first, died(actor.add.remote(1))]


@ray.remote
class FailsOnRestart:
    def __init__(self):
        if mark("fails_on_restart") > 1:
            raise ValueError("cannot start twice")

    def crash(self):
        os._exit(1)

    def ping(self):
        return "pong"


@check
def init_failing_after_a_restart():
    actor = FailsOnRestart.options(max_restarts=3, max_task_retries=1).remote()
    assert ray.get(actor.ping.remote()) == "pong"
    died(actor.crash.remote(), ValueError)       # retried: the restart failed
    error = died(actor.ping.remote(), ValueError)
    return [error is not None and "cannot start twice" in error, mark("fails_on_restart") - 1]


@ray.remote
class SlowRestart:
    def __init__(self, name):
        self.restarted = mark(name) > 1
        if self.restarted:
            time.sleep(2)

    def crash(self):
        if not self.restarted:
            os._exit(1)
        return "not again"

    def ping(self):
        return "pong"


@check
def calls_during_a_restart_wait():
    actor = SlowRestart.options(max_restarts=1).remote("during")
    ray.get(actor.ping.remote())
    cut_short = unavailable(actor.crash.remote()) is not None
    during = actor.ping.remote()                # made while it restarts (2 s)
    return [cut_short, ray.get(during, timeout=60)]


@check
def calls_wait_for_the_restart_when_they_may_retry():
    actor = SlowRestart.options(max_restarts=1, max_task_retries=1).remote("waits")
    ray.get(actor.ping.remote())
    crash = actor.crash.remote()                # run again once the actor is back
    return [ray.get(actor.ping.remote(), timeout=60), ray.get(crash, timeout=60)]


@check
def own_process_for_an_actor_with_resources():
    a = Counter.options(num_cpus=1).remote("own_a", 0)
    b = Counter.remote("shared_b", 0)
    pid_a, pid_b = ray.get([a.pid.remote(), b.pid.remote()])
    ray.kill(a)
    time.sleep(0.5)
    try:
        os.kill(pid_a, 0)
        gone = False
    except ProcessLookupError:
        gone = True
    return [pid_a != pid_b, gone, ray.get(b.add.remote(1))]


@check
def kill_with_restart():
    """kill(no_restart=False) builds the actor again (as in Ray); kill() ends it."""
    actor = Counter.options(max_restarts=1).remote("killed", 5)
    assert ray.get(actor.add.remote(1), timeout=60) == 6
    ray.kill(actor, no_restart=False)
    again = ray.get(actor.add.remote(1), timeout=60)        # waits for the restart
    builds = ray.get(actor.builds_so_far.remote(), timeout=60)
    ray.kill(actor)
    return [again, builds, died(actor.add.remote(1), type(None)) is not None]


@ray.remote
def plain(x):
    return x + 1


record("tasks_after", ray.get([plain.remote(i) for i in range(4)], timeout=60))
record("ranks_alive", all(node["Alive"] for node in ray.nodes()))
