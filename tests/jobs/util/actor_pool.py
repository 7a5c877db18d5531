"""Job of tests/test_util.py::test_actor_pool."""
import inspect, time
import hpcray as ray
import hpcray.util
from hpcray.util import ActorPool
from jobkit import check

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
