"""A fault injected into one worker rank's runtime breaks the runtime everywhere: every
pending get/wait/future fails at once with RuntimeBrokenError naming rank, host and cause,
and later calls fail fast. argv[1]: where the fault is ("handler": a worker's GET_OBJECT
handler; "turn": a turn of a worker's serving loop; "head": the head's RESULT handler); argv[2]: "catch" (the script catches and records) or
"uncaught" (the error ends the script); argv[3]: "embedded" to start the embedded default
with 2 workers, "attach" for init() under ``mpiexec python script.py``."""
import sys
import time

import hpcray as ray
from jobkit import record

where, how = sys.argv[1], sys.argv[2]
if sys.argv[3:] == ["embedded"]:
    ray.init(num_cpus=2)
elif sys.argv[3:] == ["attach"]:
    ray.init()


@ray.remote(num_cpus=1)             # holds its rank's CPU: the slow task runs elsewhere
class Saboteur:
    def make(self):
        return [ray.put("owned by this worker")]

    def sabotage(self, where):
        from jobkit import on_rank                # (the actor runs in a worker process)
        return on_rank(lambda rt: _sabotage(rt, where))


def _sabotage(rt, where):
    """On the actor's rank: a handler or a turn of its loop that raises from now on."""
    from hpcray.wire import messages

    def boom(*args):
        raise RuntimeError("injected fault")

    armed = time.monotonic() + 0.3                # once this call's answer is out

    def boom_later(*args):
        if time.monotonic() > armed:
            boom()
        return 0
    if where == "handler":
        rt.progress.handlers[messages.GET_OBJECT] = boom
    else:
        rt.progress.turn_hooks.append(boom_later)
    return rt.rank


@ray.remote
def slow():
    time.sleep(30)


saboteur = Saboteur.remote()
inner = ray.get(saboteur.make.remote())[0]
pending = slow.remote()
future = pending.future()
if where == "head":
    from jobkit import runtime
    from hpcray.wire import messages

    def boom(*args):
        raise RuntimeError("injected fault")
    runtime().progress.handlers[messages.RESULT] = boom
    inner = saboteur.make.remote()                  # its RESULT breaks the head
    rank = 0
else:
    rank = ray.get(saboteur.sabotage.remote(where))
record("sabotaged_rank", rank)
started = time.monotonic()
if how == "uncaught":
    ray.get([inner, pending])
try:
    ray.get([inner, pending], timeout=60)
except Exception as error:
    record("get_error", [type(error).__name__, str(error)])
record("get_seconds", time.monotonic() - started)
try:
    future.result(timeout=10)
except Exception as error:
    record("future_error", type(error).__name__)
for name, call in (("submit", lambda: slow.remote()), ("put", lambda: ray.put(1)),
                   ("wait", lambda: ray.wait([pending], timeout=5))):
    t0 = time.monotonic()
    try:
        call()
        record(name, "no error")
    except Exception as error:
        record(name, [type(error).__name__, time.monotonic() - t0])
