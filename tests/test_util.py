"""hpcray.util: ActorPool, Queue, multiprocessing.Pool and Executor, each in a real MPI job
and each held against its Ray / standard-library counterpart (ActorPool: Ray's documented
semantics; Queue: queue.Queue; Pool: multiprocessing.pool.ThreadPool, the same interface
without forking an MPI rank; Executor: concurrent.futures.ThreadPoolExecutor)."""

ACTOR_POOL = r"""
import inspect, time
import hpcray as ray
import hpcray.util
from hpcray.util import ActorPool

@ray.remote
class Worker:
    def double(self, v):
        time.sleep(0.002 * ((7 * v) % 5))          # uneven durations
        return 2 * v
    def sleep(self, t):
        time.sleep(t)
        return t
    def who(self, v):
        time.sleep(0.01)
        return id(self)
    def fail(self, v):
        raise ValueError(f"bad {v}")

actors = [Worker.remote() for _ in range(3)]
pool = ActorPool(actors)
double = lambda a, v: a.double.remote(v)
sleep = lambda a, t: a.sleep.remote(t)

@check
def imports():
    from hpcray.util.actor_pool import ActorPool as direct
    return [hpcray.util.ActorPool is ActorPool, direct is ActorPool]

@check
def map_ordered():
    return list(pool.map(double, range(40)))

@check
def map_is_a_generator():
    results = pool.map(double, [1, 2, 3])
    return [inspect.isgenerator(results), list(results)]

@check
def map_unordered_complete():
    out = list(pool.map_unordered(double, range(40)))
    return [len(out), sorted(out)]

@check
def map_unordered_fast_first():
    # The job has a worker rank per actor (the head spreads actors), so they run at the
    # same time: a rank runs one call of its plain actors at a time.
    p = ActorPool(actors[:2])
    return list(p.map_unordered(sleep, [1.0, 0.01, 0.01, 0.01]))

@check
def map_uses_every_actor():
    return len(set(pool.map(lambda a, v: a.who.remote(v), range(30))))

@check
def submit_then_get_next():
    for v in range(7):
        pool.submit(double, v)
    out = []
    while pool.has_next():
        out.append(pool.get_next())
    return out

@check
def map_drops_earlier_pending():
    pool.submit(double, 100)
    pool.submit(double, 101)
    return list(pool.map(double, [1, 2]))

@check
def pending_submits_wait_for_an_actor():
    p = ActorPool([actors[0]])
    for v in range(4):
        p.submit(double, v)
    state = [p.has_free(), p.has_next()]
    out = [p.get_next() for _ in range(4)]
    return state + out + [p.has_next(), p.has_free()]

@check
def get_next_timeout():
    p = ActorPool([actors[0]])
    p.submit(sleep, 0.6)
    t0 = time.monotonic()
    try:
        p.get_next(timeout=0.1)
        raised = None
    except TimeoutError as e:
        raised = [type(e).__name__, str(e)]
    waited = time.monotonic() - t0
    return {"raised": raised, "waited": waited, "still_next": p.has_next(),
            "value": p.get_next(), "after": p.has_next()}

@check
def get_next_ignore_if_timedout():
    p = ActorPool([actors[0], actors[1]])
    p.submit(sleep, 0.6)
    p.submit(sleep, 0.05)
    try:
        p.get_next(timeout=0.05, ignore_if_timedout=True)
        msg = None
    except TimeoutError as e:
        msg = str(e)
    return {"msg": msg, "next": p.get_next(), "has_next": p.has_next()}

@check
def get_next_unordered_timeout():
    p = ActorPool([actors[2]])
    p.submit(sleep, 0.5)
    t0 = time.monotonic()
    try:
        p.get_next_unordered(timeout=0.1)
        raised = None
    except TimeoutError:
        raised = "TimeoutError"
    return {"raised": raised, "waited": time.monotonic() - t0,
            "value": p.get_next_unordered(), "after": p.has_next()}

@check
def get_next_unordered_ignore_if_timedout():
    p = ActorPool([actors[2]])
    p.submit(sleep, 0.5)
    try:
        p.get_next_unordered(timeout=0.05, ignore_if_timedout=True)
        raised = None
    except TimeoutError:
        raised = "TimeoutError"
    return {"raised": raised, "has_next": p.has_next(), "has_free": p.has_free()}

@check
def get_next_after_unordered_raises():
    p = ActorPool([actors[0], actors[1]])
    p.submit(sleep, 0.4)
    p.submit(sleep, 0.01)
    first = p.get_next_unordered()
    try:
        p.get_next()
        raised = None
    except ValueError:
        raised = "ValueError"
    return [first, raised, p.get_next_unordered()]

@check
def nothing_pending():
    p = ActorPool(actors)
    out = [p.has_next()]
    for method in (p.get_next, p.get_next_unordered):
        try:
            method()
        except StopIteration:
            out.append("StopIteration")
    return out

@check
def free_pop_push():
    p = ActorPool(actors[:2])
    s = [p.has_free()]
    a, b, c = p.pop_idle(), p.pop_idle(), p.pop_idle()
    s += [a is not None, b is not None, c, p.has_free()]
    p.push(a)
    s.append(p.has_free())
    for actor in (a,):
        try:
            p.push(actor)                       # already idle in the pool
        except ValueError:
            s.append("dup idle")
    p.submit(double, 21)
    try:
        p.push(a)                               # busy in the pool
    except ValueError:
        s.append("dup busy")
    s.append(p.get_next())
    return s

@check
def push_takes_a_pending_submit():
    p = ActorPool([actors[0]])
    p.submit(sleep, 0.5)
    p.submit(sleep, 0.02)                       # waits: the only actor is busy
    p.push(actors[1])                           # starts it at once
    return [p.get_next_unordered(), p.get_next_unordered()]

@check
def errors_propagate():
    p = ActorPool(actors)
    results = p.map(lambda a, v: a.fail.remote(v) if v == 2 else a.double.remote(v), range(4))
    out = [next(results), next(results)]
    try:
        next(results)
    except ValueError as e:
        out.append(["ValueError", e.args])
    out.append(list(results))               # the generator ended with the error
    out += [p.has_next(), p.get_next()]     # the pool did not: the last result is there
    return out

@check
def fn_must_return_a_ref():
    p = ActorPool([actors[0]])
    try:
        p.submit(lambda a, v: v, 1)
    except TypeError:
        return [p.has_free(), p.has_next()]
"""


def test_actor_pool(run_job):
    res = run_job(ACTOR_POOL, n=4, timeout=180)   # one worker rank per actor
    res.assert_ok()
    assert res.value("imports") == [True, True]
    assert res.value("map_ordered") == [2 * v for v in range(40)]
    assert res.value("map_is_a_generator") == [True, [2, 4, 6]]
    assert res.value("map_unordered_complete") == [40, [2 * v for v in range(40)]]
    fast_first = res.value("map_unordered_fast_first")
    assert sorted(fast_first) == [0.01, 0.01, 0.01, 1.0] and fast_first[-1] == 1.0
    assert res.value("map_uses_every_actor") == 3
    assert res.value("submit_then_get_next") == [2 * v for v in range(7)]
    assert res.value("map_drops_earlier_pending") == [2, 4]
    assert res.value("pending_submits_wait_for_an_actor") == [False, True, 0, 2, 4, 6, False,
                                                               True]
    t = res.value("get_next_timeout")
    assert t["raised"][0] == "TimeoutError" and "Timed out" in t["raised"][1]
    assert 0.09 <= t["waited"] < 0.55
    assert t["still_next"] is True and t["value"] == 0.6 and t["after"] is False
    t = res.value("get_next_ignore_if_timedout")
    assert "ignored" in t["msg"] and t["next"] == 0.05 and t["has_next"] is False
    t = res.value("get_next_unordered_timeout")
    assert t["raised"] == "TimeoutError" and 0.09 <= t["waited"] < 0.45
    assert t["value"] == 0.5 and t["after"] is False
    assert res.value("get_next_unordered_ignore_if_timedout") == {
        "raised": "TimeoutError", "has_next": False, "has_free": True}
    assert res.value("get_next_after_unordered_raises") == [0.01, "ValueError", 0.4]
    assert res.value("nothing_pending") == [False, "StopIteration", "StopIteration"]
    assert res.value("free_pop_push") == [True, True, True, None, False, True, "dup idle",
                                          "dup busy", 42]
    assert res.value("push_takes_a_pending_submit") == [0.02, 0.5]
    assert res.value("errors_propagate") == [0, 2, ["ValueError", ["bad 2"]], [], True, 6]
    assert res.value("fn_must_return_a_ref") == [True, False]


QUEUE = r"""
import asyncio, pickle, queue as stdq, resource, time
import hpcray as ray
from hpcray.exceptions import ActorDiedError
from hpcray.util.queue import Queue, Empty, Full

def outcome(call):
    try:
        return ["ok", call()]
    except stdq.Full as e:
        return ["Full", isinstance(e, Full) or type(e) is stdq.Full]
    except stdq.Empty as e:
        return ["Empty", isinstance(e, Empty) or type(e) is stdq.Empty]
    except Exception as e:
        return [type(e).__name__]

def script(q):
    # The same operations on a hpcray Queue(2) and a queue.Queue(2).
    size = q.size if isinstance(q, Queue) else q.qsize
    out = [q.empty(), q.full(), size()]
    out += [outcome(lambda: q.put_nowait("a")), outcome(lambda: q.put("b", block=False)),
            outcome(lambda: q.put_nowait("c")), outcome(lambda: q.put("c", timeout=0.2)),
            outcome(lambda: q.put("c", timeout=-1))]
    out += [q.empty(), q.full(), size()]
    out += [outcome(lambda: q.get(block=False)), outcome(lambda: q.get_nowait()),
            outcome(lambda: q.get_nowait()), outcome(lambda: q.get(timeout=0.2)),
            outcome(lambda: q.get(timeout=-1)), outcome(lambda: q.get(block=False, timeout=-1))]
    return out

@check
def same_as_stdlib():
    return {"hpcray": script(Queue(2)), "stdlib": script(stdq.Queue(2))}

@check
def fifo():
    q = Queue()
    for i in range(200):
        q.put(i)
    return [len(q), [q.get() for _ in range(200)], q.empty()]

@check
def unbounded_is_never_full():
    q = Queue()
    q.put_nowait_batch(range(1000))
    return [q.full(), q.qsize()]

@check
def get_timeout_waits():
    q = Queue()
    t0 = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        q.get(timeout=1.0)
        raised = None
    except Empty:
        raised = "Empty"
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"raised": raised, "waited": time.monotonic() - t0, "driver_cpu": cpu}

@check
def put_timeout_waits():
    q = Queue(maxsize=1)
    q.put(1)
    t0 = time.monotonic()
    try:
        q.put(2, timeout=0.5)
        raised = None
    except Full:
        raised = "Full"
    return {"raised": raised, "waited": time.monotonic() - t0, "items": [q.get()],
            "size": q.qsize()}

@ray.remote
def produce(q, items, delay=0.0):
    for item in items:
        if delay:
            time.sleep(delay)
        q.put(item)
    return len(items)

@check
def get_with_timeout_returns_when_an_item_arrives():
    q = Queue()
    t0 = time.monotonic()
    ref = produce.remote(q, ["late"], 0.3)
    value = q.get(timeout=20)
    return {"value": value, "waited": time.monotonic() - t0, "produced": ray.get(ref)}

@ray.remote
class Consumer:
    def __init__(self, q):
        self.q = q
    def take(self, n):
        return [self.q.get(timeout=30) for _ in range(n)]

@ray.remote
class AsyncConsumer:
    def __init__(self, q):
        self.q = q
    async def take(self, n):
        return [await self.q.get_async(timeout=30) for _ in range(n)]

@check
def producer_task_consumer_actor():
    q = Queue(maxsize=5)                        # the producer must wait for room
    consumer = Consumer.remote(q)
    taken = consumer.take.remote(60)
    produced = produce.remote(q, list(range(60)))
    return [ray.get(produced), ray.get(taken), q.qsize()]

@check
def two_producers_async_consumer():
    q = Queue(maxsize=3)
    consumer = AsyncConsumer.remote(q)
    taken = consumer.take.remote(40)
    refs = [produce.remote(q, [(p, i) for i in range(20)]) for p in (0, 1)]
    got = ray.get(taken)
    return [ray.get(refs), len(got), [[i for p, i in got if p == k] for k in (0, 1)]]

@check
def driver_consumes_what_tasks_produce():
    q = Queue()
    refs = [produce.remote(q, [k] * 10) for k in range(4)]
    got = sorted(q.get(timeout=30) for _ in range(40))
    return [sum(ray.get(refs)), got == sorted([k for k in range(4) for _ in range(10)])]

@ray.remote
def get_from_box(box):
    return box[0].get(timeout=30)

@check
def picklable():
    q = Queue()
    copy = pickle.loads(pickle.dumps(q))
    copy.put("through the copy")
    first = q.get()
    ref = get_from_box.remote([q])              # a Queue nested in an argument
    time.sleep(0.2)
    q.put("to the task")
    return [first, ray.get(ref)]

@check
def batches():
    q = Queue(maxsize=4)
    out = [outcome(lambda: q.put_nowait_batch([1, 2, 3]))]
    out.append(outcome(lambda: q.put_nowait_batch([4, 5])))       # 3 + 2 > 4: none added
    out.append(q.qsize())
    out.append(outcome(lambda: q.get_nowait_batch(4)))            # only 3: none taken
    out.append(outcome(lambda: q.get_nowait_batch(2)))
    out.append(outcome(lambda: q.get_nowait_batch(0)))
    out.append(outcome(lambda: q.put_nowait_batch(5)))
    out.append(outcome(lambda: q.get_nowait_batch("2")))
    out.append(outcome(lambda: q.get_nowait_batch(-1)))
    out.append(q.get())
    return out

@check
def async_methods():
    q = Queue(maxsize=1)
    async def main():
        await q.put_async("x")
        out = [await q.get_async()]
        out.append(outcome_async(await _try(q.get_async(block=False))))
        t0 = time.monotonic()
        out.append(outcome_async(await _try(q.get_async(timeout=0.3))))
        out.append(time.monotonic() - t0 >= 0.28)
        await q.put_async(1)
        out.append(outcome_async(await _try(q.put_async(2, block=False))))
        out.append(outcome_async(await _try(q.put_async(2, timeout=0.1))))
        try:                                    # a cancelled await must leave the job alive
            await asyncio.wait_for(q.put_async(3), 0.1)
        except asyncio.TimeoutError:
            out.append("cancelled")
        return out
    async def _try(coro):
        try:
            return ("ok", await coro)
        except Exception as e:
            return ("err", e)
    def outcome_async(pair):
        kind, v = pair
        return ["ok", v] if kind == "ok" else [type(v).__name__, isinstance(v, (Empty, Full))]
    out = asyncio.run(main())
    time.sleep(0.2)
    return out + [q.get(), q.qsize()]

@ray.remote
def wait_forever(q):
    return q.get()

@check
def shutdown():
    q = Queue(actor_options={"name": "util-test-queue"})
    named = ray.get_actor("util-test-queue") == q.actor
    blocked = wait_forever.remote(q)
    time.sleep(0.3)
    q.shutdown(force=True)
    try:
        ray.get(blocked, timeout=30)
        waiter = None
    except ActorDiedError:
        waiter = "ActorDiedError"
    try:
        q.put(2)
        after = None
    except RuntimeError:
        after = "RuntimeError"
    q.shutdown()                                # twice: a no-op
    q2 = Queue()
    q2.put(1)
    t0 = time.monotonic()
    q2.shutdown()                               # graceful: the actor answers at once
    return [named, waiter, after, time.monotonic() - t0 < 4]
"""


def test_queue(run_job):
    res = run_job(QUEUE, n=3, timeout=180)
    res.assert_ok()
    same = res.value("same_as_stdlib")
    assert same["hpcray"] == same["stdlib"]
    assert same["stdlib"][3:8] == [["ok", None], ["ok", None], ["Full", True], ["Full", True],
                                   ["ValueError"]]
    assert res.value("fifo") == [200, list(range(200)), True]
    assert res.value("unbounded_is_never_full") == [False, 1000]
    t = res.value("get_timeout_waits")
    assert t["raised"] == "Empty" and 0.95 <= t["waited"] < 5
    assert t["driver_cpu"] < 0.5 * t["waited"]          # it sleeps, it does not poll hot
    t = res.value("put_timeout_waits")
    assert t["raised"] == "Full" and 0.45 <= t["waited"] < 5
    assert t["items"] == [1] and t["size"] == 0
    t = res.value("get_with_timeout_returns_when_an_item_arrives")
    assert t["value"] == "late" and t["produced"] == 1 and 0.25 <= t["waited"] < 10
    assert res.value("producer_task_consumer_actor") == [60, list(range(60)), 0]
    produced, count, by_producer = res.value("two_producers_async_consumer")
    assert produced == [20, 20] and count == 40
    assert by_producer == [list(range(20)), list(range(20))]   # each producer's order kept
    assert res.value("driver_consumes_what_tasks_produce") == [40, True]
    assert res.value("picklable") == ["through the copy", "to the task"]
    assert res.value("batches") == [
        ["ok", None], ["Full", True], 3, ["Empty", True], ["ok", [1, 2]], ["ok", []],
        ["TypeError"], ["TypeError"], ["ValueError"], 3]
    assert res.value("async_methods") == [
        "x", ["Empty", True], ["Empty", True], True, ["Full", True], ["Full", True],
        "cancelled", 1, 1]                      # the cancelled put(3) still went in
    assert res.value("shutdown") == [True, "ActorDiedError", "RuntimeError", True]


# The functions the Pool and Executor jobs give their workers (both scripts use them).
WORK = r"""
def sq(x):
    return x * x

def add(a, b=0):
    return a + b

def fail_on_13(x):
    if x == 13:
        raise ValueError(f"bad {x}")
    return x

def slow(t):
    time.sleep(t)
    return t
"""

POOL = r"""
import multiprocessing, pickle, time
from multiprocessing.pool import ThreadPool
import hpcray as ray
from hpcray.exceptions import TaskError
from hpcray.util.multiprocessing import Pool

#: the work functions (WORK)

def outcome(call):
    try:
        return ["ok", call()]
    except multiprocessing.TimeoutError:
        return ["multiprocessing.TimeoutError"]
    except Exception as e:
        return [[c.__name__ for c in type(e).__mro__ if c.__module__ == "builtins"][0],
                list(e.args)]

def scenario(P):
    # The same calls on hpcray's Pool and the standard library's ThreadPool.
    out = {}
    with P(2) as p:
        out["map"] = p.map(sq, range(1000))
        out["map_empty"] = p.map(sq, [])
        out["map_chunksize"] = p.map(sq, range(10), chunksize=3)
        out["map_generator"] = p.map(sq, (i for i in range(10)))
        out["imap"] = list(p.imap(sq, range(50)))
        out["imap_chunksize"] = list(p.imap(sq, range(50), chunksize=7))
        out["imap_unordered"] = sorted(p.imap_unordered(sq, range(50), chunksize=4))
        out["starmap"] = p.starmap(add, [(i, i) for i in range(20)])
        out["starmap_async"] = p.starmap_async(add, [(1, 2), (3, 4)]).get(timeout=60)
        out["apply"] = p.apply(add, (1,), {"b": 2})
        got = []
        r = p.apply_async(sq, (7,), callback=got.append)
        out["apply_async"] = [r.get(timeout=60), got, r.ready(), r.successful()]
        got = []
        r = p.map_async(sq, range(5), callback=got.append)
        out["map_async"] = [r.get(timeout=60), got]
        got = []
        r = p.map_async(sq, [], callback=got.append)
        out["map_async_empty"] = [r.get(timeout=60), got, r.ready()]
        chained = []                       # a callback may use the pool (runs before get returns)
        r = p.apply_async(sq, (2,), callback=lambda v: chained.append(p.apply_async(sq, (v,))))
        r.get(timeout=60)
        out["callback_submits"] = chained[0].get(timeout=60)
        errors = []
        r = p.apply_async(fail_on_13, (13,), error_callback=errors.append)
        r.wait(60)
        out["apply_async_error"] = [r.ready(), r.successful(), outcome(r.get),
                                    [isinstance(e, ValueError) for e in errors]]
        out["map_error"] = outcome(lambda: p.map(fail_on_13, range(30)))
        out["starmap_error"] = outcome(lambda: p.starmap(fail_on_13, [(13,)]))
        it = p.imap(fail_on_13, [12, 13, 14])
        out["imap_error"] = [outcome(it.next), outcome(it.next), outcome(it.next),
                             outcome(it.next)]
        r = p.map_async(slow, [0.6])
        out["not_ready"] = [outcome(r.successful)[0], outcome(lambda: r.get(timeout=0.05)),
                            r.ready(), r.get(timeout=60), r.successful()]
        it = p.imap(slow, [0.6])
        out["imap_timeout"] = [outcome(lambda: it.next(timeout=0.05)), it.next(), outcome(it.next)]
        out["chunksize_0"] = outcome(lambda: p.imap(sq, [1], chunksize=0))
    out["after_with"] = outcome(lambda: p.apply(sq, (1,)))
    p = P(2)
    r = p.map_async(slow, [0.1] * 4, chunksize=1)
    out["join_running"] = outcome(p.join)
    p.close()
    out["after_close"] = outcome(lambda: p.map(sq, [1]))
    p.join()
    out["joined"] = [r.ready(), r.get(timeout=1)]
    out["processes_0"] = outcome(lambda: P(0))
    return out

@check
def same_as_stdlib():
    ours, theirs = scenario(Pool), scenario(ThreadPool)
    return {"equal": {k: ours[k] == theirs[k] for k in theirs}, "hpcray": ours, "stdlib": theirs}

@ray.remote
def nothing():
    return None

def task_id(x):
    return ray.get_runtime_context().get_task_id()

@check
def chunking():
    with Pool(4) as p:
        big = p.map(task_id, range(10_000))
    with Pool() as p:                      # processes=None: the job's CPUs
        default = p.map(task_id, range(800))
    return [len(big), len(set(big)), None in big, len(set(default)),
            ray.cluster_resources()["CPU"]]

@check
def errors_keep_their_type():
    with Pool(2) as p:
        try:
            p.map(fail_on_13, range(20))
        except ValueError as e:
            return [isinstance(e, TaskError), e.args, "fail_on_13" in str(e)]

@check
def runs_on_worker_ranks():
    with Pool(2) as p:
        return sorted(set(p.map(lambda x: ray.get_runtime_context().get_rank(), range(40),
                                chunksize=1)))

G = None

def set_g(value):
    global G
    G = value

def read_g(x):
    return (G, x, helper_reads_g())

def helper_reads_g():
    return G

CALLS = 0

def reset():
    global CALLS
    CALLS = 0

def bump(x):
    global CALLS
    CALLS += 1
    return CALLS

@check
def initializer_globals():
    with Pool(2, initializer=set_g, initargs=(42,)) as p:
        ours = p.map(read_g, range(6))
    driver_g = G                           # the workers' initializer ran elsewhere
    with ThreadPool(2, initializer=set_g, initargs=(42,)) as p:
        theirs = p.map(read_g, range(6))
    return [ours == theirs, ours, driver_g]

@check
def workers_keep_state_until_maxtasksperchild():
    with Pool(2, initializer=reset) as p:
        kept = p.map(bump, range(6), chunksize=1)
    with Pool(2, initializer=reset, maxtasksperchild=1) as p:
        fresh = p.map(bump, range(6), chunksize=1)
    with Pool(2, maxtasksperchild=2) as p:
        plain = p.map(sq, range(10), chunksize=1)
    return [sorted(kept), fresh, plain]

@check
def terminate_cancels():
    p = Pool(2)
    results = [p.apply_async(slow, (0.4,)) for _ in range(8)]
    t0 = time.monotonic()
    p.terminate()
    fast = time.monotonic() - t0 < 1.0            # 8 x 0.4 s on 2 workers would be 1.6 s
    p.join()
    kinds = []
    for r in results:
        try:
            kinds.append(r.get(timeout=30))
        except Exception as e:
            kinds.append(type(e).__mro__[1].__name__ if type(e).__name__.startswith("TaskError(")
                         else type(e).__name__)
    return [fast, "TaskCancelledError" in kinds,
            all(k in (0.4, "TaskCancelledError") for k in kinds)]

@check
def terminate_ends_actors():
    p = Pool(2, initializer=reset)
    results = [p.apply_async(slow, (0.4,)) for _ in range(6)]
    time.sleep(0.1)
    p.terminate()
    p.join()
    names = set()
    for r in results:
        try:
            r.get(timeout=30)
            names.add("ok")
        except Exception as e:
            names.add(type(e).__name__)
    return sorted(names)

@check
def not_picklable():
    with Pool(1) as p:
        try:
            pickle.dumps(p)
        except NotImplementedError:
            return "NotImplementedError"

@check
def bad_arguments():
    return [outcome(lambda: Pool(2, initializer=5)),
            outcome(lambda: Pool(2, maxtasksperchild=0)),
            outcome(lambda: Pool(-1))]

@ray.remote
def pool_in_a_task():
    with Pool(2) as p:
        first = p.map(sq, range(20))
        it = list(p.imap(sq, range(5)))
        r = p.apply_async(add, (2, 3))
        return [first, it, r.get(timeout=60)]

@check
def inside_a_task():
    return ray.get(pool_in_a_task.remote(), timeout=120)
"""


def same_as_stdlib(res):
    """The stdlib's outcomes, after checking hpcray's were the same in every case."""
    same = res.value("same_as_stdlib")
    differ = {k: (same["hpcray"][k], same["stdlib"][k]) for k, eq in same["equal"].items()
              if not eq}
    assert not differ, differ
    return same["stdlib"]


def test_pool(run_job):
    res = run_job(POOL.replace("#: the work functions (WORK)\n", WORK), n=3, timeout=240)
    res.assert_ok()
    stdlib = same_as_stdlib(res)
    assert stdlib["map"] == [x * x for x in range(1000)]
    assert stdlib["apply_async"] == [49, [49], True, True]
    assert stdlib["map_async_empty"] == [[], [], True]
    assert stdlib["callback_submits"] == 16
    assert stdlib["apply_async_error"] == [True, False, ["ValueError", ["bad 13"]], [True]]
    assert stdlib["not_ready"] == ["ValueError", ["multiprocessing.TimeoutError"], False, [0.6],
                                   True]
    assert stdlib["imap_timeout"] == [["multiprocessing.TimeoutError"], 0.6,
                                      ["StopIteration", []]]
    assert stdlib["imap_error"] == [["ok", 12], ["ValueError", ["bad 13"]], ["ok", 14],
                                    ["StopIteration", []]]
    assert stdlib["after_with"][0] == "ValueError"
    assert stdlib["join_running"][0] == "ValueError"
    big, distinct, none_in, default_distinct, cpus = res.value("chunking")
    assert big == 10_000 and distinct == 16 and none_in is False   # 4 x processes chunks
    assert default_distinct == 4 * int(cpus)
    assert res.value("errors_keep_their_type") == [True, ["bad 13"], True]
    assert res.value("runs_on_worker_ranks") == [1, 2]
    equal, ours, driver_g = res.value("initializer_globals")
    assert equal and ours == [[42, x, 42] for x in range(6)] and driver_g is None
    kept, fresh, plain = res.value("workers_keep_state_until_maxtasksperchild")
    assert kept == [1, 1, 2, 2, 3, 3]          # two workers, three chunks each
    assert fresh == [1] * 6                      # a new worker for every chunk
    assert plain == [x * x for x in range(10)]
    assert res.value("terminate_cancels") == [True, True, True]
    ended = set(res.value("terminate_ends_actors"))
    assert ended <= {"ok", "ActorDiedError", "TaskCancelledError"} and ended - {"ok"}
    assert res.value("not_picklable") == "NotImplementedError"
    assert res.value("bad_arguments") == [["TypeError", ["initializer must be a callable"]],
                                          ["ValueError", ["maxtasksperchild must be a positive "
                                                          "int or None"]],
                                          ["ValueError", ["Number of processes must be at "
                                                          "least 1"]]]
    assert res.value("inside_a_task") == [[x * x for x in range(20)], [0, 1, 4, 9, 16], 5]


EXECUTOR = r"""
import concurrent.futures as cf, time
import hpcray as ray
from hpcray.util import Executor

#: the work functions (WORK)

def outcome(call):
    try:
        return ["ok", call()]
    except Exception as e:
        return [[c.__name__ for c in type(e).__mro__ if c.__module__ == "builtins"][0],
                list(e.args)]

def scenario(E):
    # The same calls on hpcray's Executor and the standard library's ThreadPoolExecutor.
    out = {}
    with E(max_workers=2) as ex:
        out["submit"] = ex.submit(add, 1, b=2).result(timeout=60)
        out["map"] = list(ex.map(sq, range(100)))
        out["map_two_iterables"] = list(ex.map(add, range(5), range(10, 15)))
        f = ex.submit(fail_on_13, 13)
        e = f.exception(timeout=60)
        out["exception"] = [isinstance(e, ValueError), e.args, f.done(), outcome(f.result)]
        it = ex.map(fail_on_13, range(12, 15))
        out["map_error"] = [outcome(lambda: next(it)), outcome(lambda: next(it))]
        got = []
        f = ex.submit(sq, 5)
        f.add_done_callback(lambda f: got.append(f.result()))
        cf.wait([f], timeout=60)
        time.sleep(0.05)
        out["callback"] = got
        chained = []                       # a callback may use the executor
        f = ex.submit(sq, 3)
        f.add_done_callback(lambda f: chained.append(ex.submit(sq, f.result())))
        f.result(timeout=60)
        deadline = time.monotonic() + 60
        while not chained and time.monotonic() < deadline:
            time.sleep(0.01)
        out["callback_submits"] = chained[0].result(timeout=60)
        futures = [ex.submit(slow, t) for t in (0.6, 0.05)]
        out["as_completed"] = [f.result() for f in cf.as_completed(futures, timeout=60)]
        done, not_done = cf.wait([ex.submit(slow, 0.6), ex.submit(slow, 0.01)],
                                 return_when=cf.FIRST_COMPLETED, timeout=60)
        out["first_completed"] = [len(done) >= 1, sorted(f.result() for f in done)[0]]
        f = ex.submit(slow, 0.5)
        time.sleep(0.1)
        out["running"] = [f.running(), f.done(), f.cancel(), f.result(timeout=60), f.done()]
    out["after_with"] = outcome(lambda: ex.submit(sq, 1))
    ex = E(max_workers=1)
    futures = [ex.submit(slow, 0.3) for _ in range(4)]
    time.sleep(0.1)
    out["cancel_pending"] = [futures[3].cancel(), futures[3].cancelled()]
    ex.shutdown(wait=True, cancel_futures=True)
    out["cancel_futures"] = [f.cancelled() for f in futures] + [all(f.done() for f in futures)]
    out["cancelled_result"] = outcome(futures[2].result)[0]
    ex = E(max_workers=2)
    futures = [ex.submit(slow, 0.4) for _ in range(2)]
    t0 = time.monotonic()
    ex.shutdown(wait=False)
    out["shutdown_nowait"] = [time.monotonic() - t0 < 0.3, [f.result(timeout=60) for f in futures]]
    ex = E(max_workers=2)
    futures = [ex.submit(slow, 0.4) for _ in range(2)]
    t0 = time.monotonic()
    ex.shutdown(wait=True)
    out["shutdown_wait"] = [time.monotonic() - t0 >= 0.3, all(f.done() for f in futures)]
    out["max_workers_0"] = outcome(lambda: E(max_workers=0))
    ex = E(max_workers=1)
    t0 = time.monotonic()
    list(ex.map(slow, [0.2] * 3))
    out["max_workers_limit"] = time.monotonic() - t0 >= 0.55
    ex.shutdown()
    with E(max_workers=2) as ex:
        it = ex.map(slow, [0.8, 0.8], timeout=0.2)
        t0 = time.monotonic()
        out["map_timeout"] = [outcome(lambda: next(it))[0], time.monotonic() - t0 < 0.7]
    return out

@check
def same_as_stdlib():
    ours, theirs = scenario(Executor), scenario(cf.ThreadPoolExecutor)
    return {"equal": {k: ours[k] == theirs[k] for k in theirs}, "hpcray": ours, "stdlib": theirs}

@check
def is_a_concurrent_executor():
    with Executor() as ex:
        f = ex.submit(lambda: ray.get_runtime_context().get_rank())
        ranks = {ex.submit(lambda: ray.get_runtime_context().get_rank()).result(60)
                 for _ in range(20)}
        return [isinstance(ex, cf.Executor), isinstance(f, cf.Future), f.result(60) != 0,
                ranks <= {1, 2}, ex._max_workers == int(ray.cluster_resources()["CPU"])]

@check
def refs_pass_as_given():
    ref = ray.put(41)
    with Executor() as ex:
        return ex.submit(lambda r: ray.get(r) + 1, ref).result(60)

@ray.remote
def executor_in_a_task():
    with Executor(max_workers=2) as ex:
        return [f.result(60) for f in [ex.submit(sq, i) for i in range(6)]]

@check
def inside_a_task():
    return ray.get(executor_in_a_task.remote(), timeout=120)
"""


def test_executor(run_job):
    res = run_job(EXECUTOR.replace("#: the work functions (WORK)\n", WORK), n=3,
                  timeout=240)
    res.assert_ok()
    stdlib = same_as_stdlib(res)
    assert stdlib["exception"] == [True, ["bad 13"], True, ["ValueError", ["bad 13"]]]
    assert stdlib["map_error"] == [["ok", 12], ["ValueError", ["bad 13"]]]
    assert stdlib["map_timeout"] == ["TimeoutError", True]
    assert stdlib["as_completed"] == [0.05, 0.6]
    assert stdlib["callback_submits"] == 81
    assert stdlib["running"] == [True, False, False, 0.5, True]
    assert stdlib["cancel_futures"] == [False, True, True, True, True]
    assert stdlib["after_with"][0] == "RuntimeError"
    assert res.value("is_a_concurrent_executor") == [True, True, True, True, True]
    assert res.value("refs_pass_as_given") == 42
    assert res.value("inside_a_task") == [i * i for i in range(6)]
