"""Job of tests/test_util.py::test_executor."""
import concurrent.futures as cf, time
import hpcray as ray
from hpcray.util import Executor
from jobkit import check
from poolwork import add, fail_on_13, slow, sq

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
