# Defect 5: sys.exit() in a task or an actor method reached get as a TaskError that was also a
# SystemExit: `except RayActorError` missed it and the script ended silently with status 0.
# As in Ray: a task fails with WorkerCrashedError (retried up to max_retries); an actor method
# ends the actor (ActorDiedError, a RayActorError, for that call and all later ones). Neither
# is a SystemExit; the message names sys.exit and the code.
import os
import sys
import tempfile

import hpcray as ray
from jobkit import check, record
from hpcray.exceptions import RayActorError


@ray.remote
def exits(code):
    sys.exit(code)


@ray.remote(max_retries=2)
def exits_with_retries(path):
    with open(path, "a") as file:
        file.write("x")
    sys.exit(4)


@ray.remote
class Actor:
    def exits(self, code):
        sys.exit(code)

    def ping(self):
        return "pong"

    def leaves(self):
        ray.actor.exit_actor()


@ray.remote
class AsyncActor:
    async def exits(self):
        sys.exit(5)


@ray.remote
class ExitsInInit:
    def __init__(self):
        sys.exit(2)

    def ping(self):
        return "pong"


@check("task")
def _():
    return ray.get(exits.remote(3), timeout=30)


@check("task_no_code")
def _():
    return ray.get(exits.remote(None), timeout=30)


@check("task_caught_as_exception")
def _():
    try:
        ray.get(exits.remote(3), timeout=30)
    except Exception as error:                 # what a driver's handler catches
        return type(error).__name__
    return None


marks = tempfile.mktemp()


@check("task_retried")
def _():
    try:
        ray.get(exits_with_retries.remote(marks), timeout=30)
    finally:
        record("attempts", len(open(marks).read()))
        os.unlink(marks)


actor = Actor.remote()
record("alive", ray.get(actor.ping.remote(), timeout=30))
exit_call = actor.exits.remote(3)
queued_call = actor.ping.remote()


@check("actor_method")
def _():
    return ray.get(exit_call, timeout=30)


@check("actor_queued_call")
def _():
    return ray.get(queued_call, timeout=30)


@check("actor_later_call")
def _():
    return ray.get(actor.ping.remote(), timeout=30)


@check("actor_caught_as_ray_actor_error")
def _():
    try:
        ray.get(Actor.remote().exits.remote(1), timeout=30)
    except RayActorError as error:
        return type(error).__name__
    return None


@check("exit_actor")
def _():
    return ray.get(Actor.remote().leaves.remote(), timeout=30)


@check("async_actor_method")
def _():
    return ray.get(AsyncActor.remote().exits.remote(), timeout=30)


@check("exit_in_init")
def _():
    return ray.get(ExitsInInit.remote().ping.remote(), timeout=30)


record("reached_end", True)
