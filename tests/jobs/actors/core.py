"""Job of tests/test_actors.py::test_actors."""
import asyncio, pickle, sys, threading, time
import hpcray as ray
from hpcray.exceptions import ActorDiedError, TaskCancelledError
from hpcray.util.state import list_actors
from jobkit import check

WORKERS = int(sys.argv[1])          # the job's worker ranks

@ray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start
        self.log = []
    def incr(self, by=1):
        self.n += by
        return self.n
    def append(self, item):
        self.log.append(item)
        return len(self.log)
    def get_log(self):
        return self.log
    def value(self):
        return self.n
    def rank(self):
        return ray.get_runtime_context().get_rank()
    def fail(self):
        raise KeyError("no such thing")
    @ray.method(num_returns=2)
    def pair(self):
        return self.n, -self.n
    def sleep(self, t):
        time.sleep(t)
        return t

@ray.remote
def slow_value(t, v):
    time.sleep(t)
    return v

@check
def spread_over_ranks():
    # First of the checks: no other actor lives yet, so each rank hosts one of these (the
    # head places an actor on the rank hosting the fewest).
    actors = [Counter.remote() for _ in range(WORKERS)]
    return sorted(ray.get([a.rank.remote() for a in actors]))

@check
def ordered_per_caller():
    c = Counter.remote()
    refs = [c.append.remote(i) for i in range(300)]
    ray.get(refs)
    return ray.get(c.get_log.remote()) == list(range(300))

@check
def waits_for_argument_in_order():
    # the first call waits for a slow argument; the later ones (no argument) must not pass it
    c = Counter.remote()
    first = c.append.remote(slow_value.remote(0.5, "slow"))
    rest = [c.append.remote(i) for i in range(5)]
    ray.get(rest)
    return ray.get(c.get_log.remote())

@check
def state_kept():
    c = Counter.remote(10)
    ray.get([c.incr.remote() for _ in range(5)])
    return ray.get(c.value.remote())

@check
def method_failure_fails_that_call_only():
    c = Counter.remote(1)
    ref = c.fail.remote()
    try:
        ray.get(ref)
        raised = None
    except KeyError as e:
        raised = type(e).__mro__[1].__name__, "no such thing" in str(e)
    return raised, ray.get(c.incr.remote())

@check
def num_returns_on_methods():
    c = Counter.remote(3)
    a, b = c.pair.remote()
    whole = c.pair.options(num_returns=1).remote()
    return ray.get([a, b]), ray.get(whole)

@check
def direct_instantiation_is_an_error():
    Counter(1)

@check
def unknown_method_is_an_error():
    Counter.remote().nope

@check
def init_failure():
    @ray.remote
    class Broken:
        def __init__(self):
            raise ValueError("bad config")
        def f(self):
            return 1
    b = Broken.remote()
    out = []
    for _ in range(2):
        try:
            ray.get(b.f.remote(), timeout=30)
        except ActorDiedError as e:
            out.append([type(e.cause).__name__, "bad config" in str(e), "__init__" in str(e)])
    return out

@check
def kill_fails_pending_and_later_calls():
    c = Counter.remote()
    running = c.sleep.remote(1.0)
    queued = [c.incr.remote() for _ in range(3)]
    time.sleep(0.3)
    ray.kill(c)
    outcome = []
    for ref in [running] + queued + [c.incr.remote()]:
        try:
            ray.get(ref, timeout=30)
            outcome.append("ran")
        except ActorDiedError as e:
            outcome.append("died" if "killed" in str(e) else str(e))
    return outcome

@check
def kill_needs_a_handle():
    ray.kill("not an actor")

@check
def threaded_actor_runs_calls_at_once():
    @ray.remote(max_concurrency=4)
    class Pool:
        def sleep(self, t):
            time.sleep(t)
            return threading.get_ident()
    p = Pool.remote()
    ray.get(p.sleep.remote(0))
    t0 = time.perf_counter()
    idents = ray.get([p.sleep.remote(0.5) for _ in range(4)])
    return time.perf_counter() - t0, len(set(idents))

@check
def plain_actor_runs_one_call_at_a_time():
    c = Counter.remote()
    ray.get(c.value.remote())
    t0 = time.perf_counter()
    ray.get([c.sleep.remote(0.2) for _ in range(3)])
    return time.perf_counter() - t0

@check
def async_actor_interleaves_calls():
    @ray.remote
    class Waiter:
        def __init__(self):
            self.event = None
        async def wait(self):
            if self.event is None:
                self.event = asyncio.Event()
            await self.event.wait()
            return "released"
        async def release(self):
            if self.event is None:
                self.event = asyncio.Event()
            self.event.set()
            return "set"
        async def nap(self, t):
            await asyncio.sleep(t)
            return t
    w = Waiter.remote()
    waiting = w.wait.remote()          # would block a one-call-at-a-time actor forever
    t0 = time.perf_counter()
    naps = ray.get([w.nap.remote(0.3) for _ in range(50)], timeout=30)
    elapsed = time.perf_counter() - t0
    return ray.get(w.release.remote(), timeout=30), ray.get(waiting, timeout=30), elapsed, len(naps)

@check
def await_ref_inside_async_actor():
    @ray.remote
    class Awaiter:
        async def total(self, refs):
            values = [await r for r in refs]
            return sum(values)
    a = Awaiter.remote()
    return ray.get(a.total.remote([slow_value.remote(0.1, i) for i in range(5)]), timeout=30)

@check
def handles_through_tasks_and_actors():
    @ray.remote
    def bump(counter, times):
        return ray.get([counter.incr.remote() for _ in range(times)])[-1]
    @ray.remote
    class Relay:
        def __init__(self, target):
            self.target = target
        def forward(self, by):
            return ray.get(self.target.incr.remote(by))
        def handle(self):
            return self.target
    c = Counter.remote()
    ray.get([bump.remote(c, 10) for _ in range(3)])
    relay = Relay.remote(c)
    ray.get(relay.forward.remote(100))
    back = ray.get(relay.handle.remote())
    return ray.get(back.value.remote()), back == c, pickle.loads(pickle.dumps(c)) == c

@check
def parameter_server():
    import numpy as np
    @ray.remote
    class ParameterServer:
        def __init__(self, n):
            self.w = np.zeros(n)
        def push(self, grad):
            self.w += grad
            return True
        def pull(self):
            return self.w
    @ray.remote
    def worker(ps, steps):
        for _ in range(steps):
            w = ray.get(ps.pull.remote())
            ray.get(ps.push.remote(np.ones_like(w)))
        return steps
    ps = ParameterServer.remote(1000)
    ray.get([worker.remote(ps, 5) for _ in range(4)])
    return float(ray.get(ps.pull.remote()).sum())

@check
def named_actors():
    a = Counter.options(name="hub").remote(7)
    out = {"get_actor": ray.get(ray.get_actor("hub").value.remote())}
    try:
        Counter.options(name="hub").remote()
    except ValueError as e:
        out["duplicate"] = "already taken" in str(e)
    out["get_if_exists"] = Counter.options(name="hub", get_if_exists=True).remote(0) == a
    other = Counter.options(name="hub", namespace="other").remote(1)
    out["namespaces"] = ray.get(ray.get_actor("hub", namespace="other").value.remote())
    try:
        ray.get_actor("missing")
    except ValueError as e:
        out["missing"] = "missing" in str(e)
    @ray.remote
    def from_task():
        return ray.get(ray.get_actor("hub").incr.remote())
    out["from_task"] = ray.get(from_task.remote())
    ray.kill(a)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            ray.get_actor("hub")
            time.sleep(0.05)
        except ValueError:
            break
    fresh = Counter.options(name="hub").remote(42)
    out["reused_after_kill"] = ray.get(ray.get_actor("hub").value.remote())
    return out

@check
def cancel_queued_call():
    c = Counter.remote()
    busy = c.sleep.remote(0.5)
    queued = c.incr.remote()
    time.sleep(0.1)
    ray.cancel(queued)
    try:
        ray.get(queued, timeout=30)
        return "ran"
    except TaskCancelledError:
        return ray.get(busy), ray.get(c.value.remote())

@check
def infeasible_actor():
    # No rank has a GPU: the actor stays pending (Ray's semantics, with a warning); its calls
    # wait; others' go on; killing it ends the wait.
    waiting = Counter.options(num_gpus=1).remote()
    call = waiting.value.remote()
    ready, _ = ray.wait([call], timeout=0.5)
    states = {a["state"] for a in list_actors() if a["class_name"].endswith("Counter")}
    other = ray.get(Counter.remote(5).value.remote())
    ray.kill(waiting)
    try:
        ray.get(call, timeout=10)
    except ActorDiedError as error:
        return [len(ready), "PENDING_CREATION" in states, other, type(error).__name__]

@check
def resources_are_held():
    # every worker has 1 CPU: WORKERS actors holding one each fill the job; one more waits
    # until one of them ends
    holders = [Counter.options(num_cpus=1).remote() for _ in range(WORKERS)]
    ray.get([h.value.remote() for h in holders])
    extra = Counter.options(num_cpus=1).remote(5)
    ready, _ = ray.wait([extra.value.remote()], timeout=1.0)
    waited = not ready
    ray.kill(holders[0])
    return waited, ray.get(extra.value.remote(), timeout=30)

def states(cls):
    return sorted(a["state"] for a in list_actors() if a["class_name"] == cls)

@check
def released_when_handles_are_gone():
    @ray.remote
    class Ephemeral:
        def ping(self):
            return 1
    @ray.remote
    def hold(handle, t):
        time.sleep(t)
        return ray.get(handle.ping.remote())
    e = Ephemeral.remote()
    ray.get(e.ping.remote())
    held = hold.remote(e, 0.5)          # a task still holds a handle: it must stay
    del e
    time.sleep(0.2)
    during = states("Ephemeral")
    result = ray.get(held)
    del held
    deadline = time.time() + 20
    while time.time() < deadline and states("Ephemeral") != ["DEAD"]:
        time.sleep(0.05)
    return during, result, states("Ephemeral")

@check
def detached_outlives_its_handles():
    @ray.remote
    class Keeper:
        def ping(self):
            return "here"
    k = Keeper.options(name="keeper", lifetime="detached").remote()
    ray.get(k.ping.remote())
    del k
    time.sleep(0.5)
    return ray.get(ray.get_actor("keeper").ping.remote())

@check
def thousand_actors():
    @ray.remote
    class Small:
        def __init__(self, i):
            self.i = i
        def get(self):
            return self.i
    t0 = time.perf_counter()
    actors = [Small.remote(i) for i in range(1000)]
    total = sum(ray.get([a.get.remote() for a in actors], timeout=120))
    created = time.perf_counter() - t0
    ranks = len({a["rank"] for a in list_actors() if a["class_name"] == "Small"})
    del actors
    deadline = time.time() + 60
    while time.time() < deadline and set(states("Small")) != {"DEAD"}:
        time.sleep(0.1)
    return total, ranks, sorted(set(states("Small"))), created
