"""Job of tests/test_util.py::test_pool."""
import multiprocessing, pickle, time
from multiprocessing.pool import ThreadPool
import hpcray as ray
from hpcray.exceptions import TaskError
from hpcray.util.multiprocessing import Pool
from jobkit import check
from poolwork import add, fail_on_13, slow, sq

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
