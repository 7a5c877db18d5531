"""Core task API: remote/get/put/wait/cancel, ObjectRef behaviour, DAGs,
nested refs, futures and await, runtime context, init/shutdown, resources,
nested (recursive) tasks."""
import pytest

BASICS = r"""
import asyncio, concurrent.futures, pickle, time
import numpy as np
import hpcray as ray

N = int(__import__("sys").argv[1])

@ray.remote
def add(a, b=0):
    return a + b

@ray.remote
def ident(x):
    return x

@ray.remote(num_returns=2)
def two(x):
    return x, x * 10

@ray.remote
def three():
    return 1, 2, 3

@ray.remote(num_cpus=1, num_gpus=0, resources={}, max_retries=0, retry_exceptions=False, name="custom_name")
def with_opts(x):
    return -x

@ray.remote
def sleeper(t, v=None):
    time.sleep(t)
    return v

@ray.remote
def describe_arg(x):
    return {"type": type(x).__name__,
            "inner": [type(i).__name__ for i in x] if isinstance(x, (list, tuple)) else None}

@ray.remote
def sum_nested(refs):
    return sum(ray.get(list(refs)))

@ray.remote
def ctx():
    c = ray.get_runtime_context()
    return {"rank": c.get_rank(), "task_id": c.get_task_id(), "node_id": c.get_node_id()}

@ray.remote
def arr_stats(a):
    return float(a.sum()), a.shape, str(a.dtype)

@ray.remote
def make_arr(n):
    return np.arange(n, dtype=np.float64)

@check
def simple():
    return ray.get(add.remote(1, 2))

@check
def kwargs():
    return ray.get(add.remote(1, b=5))

@check
def kwarg_ref_resolved():
    return ray.get(add.remote(1, b=ray.put(41)))

@check
def get_list():
    return ray.get([add.remote(i, i) for i in range(20)])

@check
def get_empty_list():
    return ray.get([])

@check
def put_get():
    return ray.get(ray.put({"a": [1, 2, 3]}))

@ray.remote
def mutate(lst):
    lst.append("mutated")
    return len(lst)

@check
def put_copies_value():
    v = [1]
    r = ray.put(v)
    v.append(2)
    return ray.get(r)

@check
def args_are_copies():
    v = [1, 2]
    n = ray.get(mutate.remote(v))
    return [n, v]

from dataclasses import dataclass

@dataclass
class Point:                      # a class defined in the script (__main__)
    x: int
    y: int

@ray.remote
def move(p):
    return Point(p.x + 1, p.y + 1)

def shift(v):                     # a plain function defined in the script
    return v + 1000

@ray.remote
def apply(fn, v):
    return fn(v)

@check
def main_module_objects():
    p = ray.get(move.remote(Point(1, 2)))
    q = ray.get(move.remote(ray.put(Point(5, 5))))
    return [type(p).__name__, p.x, p.y, isinstance(p, Point), q.x,
            ray.get(apply.remote(shift, 1)), ray.get(apply.remote(lambda v: v * 2, 4))]

@check
def put_ref_as_arg():
    return ray.get(ident.remote(ray.put("from-put")))

@check
def numpy_roundtrip():
    a = np.random.default_rng(0).random(1_000_000)          # 8 MB
    s, shape, dtype = ray.get(arr_stats.remote(a))
    back = ray.get(ray.put(a))
    made = ray.get(make_arr.remote(1_000_000))
    return [abs(s - float(a.sum())) < 1e-6, list(shape), dtype,
            bool(np.array_equal(back, a)), float(made.sum())]

@check
def num_returns_decorator():
    r1, r2 = two.remote(7)
    return ray.get([r1, r2])

@check
def num_returns_options():
    refs = three.options(num_returns=3).remote()
    return [len(refs), ray.get(list(refs))]

@check
def decorator_options_accepted():
    return ray.get(with_opts.remote(5))

@check
def options_accepted():
    return ray.get(add.options(num_cpus=1, name="renamed", max_retries=1).remote(2, 3))

@check
def direct_call():
    add(1, 2)

@check
def get_non_ref():
    ray.get(123)

@check
def get_timeout():
    r = sleeper.remote(2.0, "late")
    t0 = time.time()
    try:
        ray.get(r, timeout=0.1)
    except ray.exceptions.GetTimeoutError as e:
        took = time.time() - t0
        return {"timeout_error": True, "is_TimeoutError": isinstance(e, TimeoutError),
                "fast": took < 1.5, "later": ray.get(r)}
    return {"timeout_error": False}

@check
def objectref_hash_eq():
    a = ray.put(1)
    b = add.remote(1, 1)
    s = {a, b, a}
    d = {a: "a", b: "b"}
    return [len(s), d[a], d[b], a == a, a != b, type(a).__name__, isinstance(a, ray.ObjectRef)]

@check
def objectref_pickle():
    r = add.remote(20, 22)
    r2 = pickle.loads(pickle.dumps(r))
    p = ray.put("put-value")
    p2 = pickle.loads(pickle.dumps(p))
    return [r2 == r, hash(r2) == hash(r), ray.get(r2), ray.get(p2)]

@check
def dag():
    a = add.remote(1, 2)          # 3
    b = add.remote(a, 10)         # 13
    c = add.remote(a, b)          # 16
    d = add.remote(c, ray.put(100))
    return ray.get([c, d])

@check
def dag_wide():
    layer = [add.remote(i, 0) for i in range(8)]
    while len(layer) > 1:
        layer = [add.remote(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return ray.get(layer[0])

@check
def nested_refs_stay_refs():
    refs = [add.remote(i, 0) for i in range(4)]
    return [ray.get(describe_arg.remote(refs)), ray.get(sum_nested.remote(refs))]

@check
def top_level_ref_resolved():
    return ray.get(describe_arg.remote(ray.put([1, 2])))

@check
def future_result():
    fut = add.remote(2, 2).future()
    return [isinstance(fut, concurrent.futures.Future), fut.result(timeout=30)]

@check
def await_ref():
    async def main():
        x = await add.remote(3, 4)
        y = await asyncio.gather(add.remote(1, 1), ident.remote("z"))
        return [x, list(y)]
    return asyncio.run(main())

@check
def wait_order_and_split():
    slow = sleeper.remote(1.5, "slow")
    p1, p2 = ray.put("p1"), ray.put("p2")
    refs = [p1, slow, p2]
    ready, not_ready = ray.wait(refs, num_returns=2, timeout=None, fetch_local=True)
    ok1 = (ready == [p1, p2]) and (not_ready == [slow])
    ready, not_ready = ray.wait(refs, num_returns=3, timeout=0.1)
    ok2 = (ready == [p1, p2]) and (not_ready == [slow])
    ready, not_ready = ray.wait(refs)          # num_returns=1 default
    ok3 = len(ready) == 1 and ready[0] in (p1, p2) and len(not_ready) == 2
    ready, not_ready = ray.wait(refs, num_returns=3)
    ok4 = (ready == refs) and (not_ready == [])
    return [ok1, ok2, ok3, ok4, ray.get(slow)]

@check
def wait_too_many():
    ray.wait([ray.put(1)], num_returns=2)

@check
def many_small_tasks():
    return sum(ray.get([add.remote(i, 1) for i in range(300)]))

@check
def runtime_context():
    c = ray.get_runtime_context()
    inside = ray.get([ctx.remote() for _ in range(4)])
    tids = [i["task_id"] for i in inside]
    hex_ok = all(isinstance(t, str) and len(t) > 0 and int(t, 16) >= 0 for t in tids)
    return {"driver_task_id": c.get_task_id(), "driver_rank": c.get_rank(),
            "driver_node_is_str": isinstance(c.get_node_id(), str) and len(c.get_node_id()) > 0,
            "task_ranks": sorted(set(i["rank"] for i in inside)),
            "task_ids_hex": hex_ok, "task_ids_distinct": len(set(tids)) == len(tids),
            "task_node_is_str": all(isinstance(i["node_id"], str) and i["node_id"] for i in inside)}

@check
def cluster_resources():
    r = ray.cluster_resources()
    return {"is_dict": isinstance(r, dict), "CPU": r.get("CPU")}

@check
def still_works_at_end():
    return ray.get(add.remote(100, 1))
"""


@pytest.mark.parametrize("n", [1, 2, 4])
def test_basics(run_job, n):
    res = run_job(BASICS, n=n, args=[n], timeout=120)
    assert res.value("simple") == 3
    assert res.value("kwargs") == 6
    assert res.value("kwarg_ref_resolved") == 42
    assert res.value("get_list") == [2 * i for i in range(20)]
    assert res.value("get_empty_list") == []
    assert res.value("put_get") == {"a": [1, 2, 3]}
    assert res.value("put_ref_as_arg") == "from-put"
    assert res.value("main_module_objects") == ["Point", 2, 3, True, 6, 1001, 8]
    assert res.value("put_copies_value") == [1]
    assert res.value("args_are_copies") == [3, [1, 2]]
    assert res.value("numpy_roundtrip") == [True, [1_000_000], "float64", True,
                                            float(sum(range(1_000_000)))]
    assert res.value("num_returns_decorator") == [7, 70]
    assert res.value("num_returns_options") == [3, [1, 2, 3]]
    assert res.value("decorator_options_accepted") == -5
    assert res.value("options_accepted") == 5

    err = res.error("direct_call")
    assert "TypeError" in err["mro"], err
    assert ".remote(" in err["msg"], err   # e.g. "use f.remote()" or "f.remote(...)"
    err = res.error("get_non_ref")
    assert "TypeError" in err["mro"], err

    assert res.value("get_timeout") == {"timeout_error": True, "is_TimeoutError": True,
                                        "fast": True, "later": "late"}
    assert res.value("objectref_hash_eq") == [2, "a", "b", True, True, "ObjectRef", True]
    assert res.value("objectref_pickle") == [True, True, 42, "put-value"]
    assert res.value("dag") == [16, 116]
    assert res.value("dag_wide") == sum(range(8))
    assert res.value("nested_refs_stay_refs") == [
        {"type": "list", "inner": ["ObjectRef"] * 4}, 0 + 1 + 2 + 3]
    assert res.value("top_level_ref_resolved") == {"type": "list", "inner": ["int", "int"]}
    assert res.value("future_result") == [True, 4]
    assert res.value("await_ref") == [7, [2, "z"]]
    assert res.value("wait_order_and_split") == [True, True, True, True, "slow"]
    err = res.error("wait_too_many")
    assert "ValueError" in err["mro"], err
    assert res.value("many_small_tasks") == sum(range(1, 301))

    ctx = res.value("runtime_context")
    assert ctx["driver_task_id"] is None
    assert ctx["driver_rank"] == 0
    assert ctx["driver_node_is_str"] is True
    assert ctx["task_ids_hex"] is True
    assert ctx["task_ids_distinct"] is True
    assert ctx["task_node_is_str"] is True
    if n == 1:
        assert ctx["task_ranks"] == [0], ctx
    else:
        assert ctx["task_ranks"] and all(1 <= r < n for r in ctx["task_ranks"]), ctx

    cr = res.value("cluster_resources")
    assert cr["is_dict"] is True and cr["CPU"] is not None and cr["CPU"] >= 1, cr
    assert res.value("still_works_at_end") == 101
    res.assert_ok()


def test_tasks_spread_over_workers(run_job):
    res = run_job(
        """
        import time
        import hpcray as ray

        @ray.remote
        def where(t):
            time.sleep(t)
            return ray.get_runtime_context().get_rank()

        record("ranks", sorted(set(ray.get([where.remote(0.3) for _ in range(12)]))))
        """,
        n=4, timeout=60,
    )
    res.assert_ok()
    assert res.value("ranks") == [1, 2, 3]


@pytest.mark.parametrize("n", [1, 2])
def test_cancel_queued_task(run_job, tmp_path, n):
    marker = tmp_path / f"victim-ran-{n}"
    res = run_job(
        """
        import os, sys, time
        import hpcray as ray

        marker = sys.argv[1]

        @ray.remote
        def sleeper(t):
            time.sleep(t)
            return t

        @ray.remote
        def victim(path):
            open(path, "w").close()
            return "victim-ran"

        @ray.remote
        def quick(x):
            return x

        cpus = int(ray.cluster_resources().get("CPU", 1))
        blockers = [sleeper.remote(1.0) for _ in range(2 * max(1, cpus))]
        v = victim.remote(marker)
        ray.cancel(v)

        @check
        def get_cancelled():
            return ray.get(v, timeout=30)

        @check
        def wait_reports_cancelled_ready():
            ready, not_ready = ray.wait([v], timeout=10)
            return len(ready)

        record("blockers", ray.get(blockers))
        time.sleep(0.5)
        record("victim_ran", os.path.exists(marker))

        done = quick.remote("q")
        ray.get(done)

        @check
        def cancel_finished_is_noop():
            ray.cancel(done)
            return ray.get(done)

        record("after", ray.get(quick.remote("still-works")))
        """,
        n=n, args=[str(marker)], timeout=90,
    )
    err = res.error("get_cancelled")
    assert "TaskCancelledError" in err["mro"], err
    assert res.value("wait_reports_cancelled_ready") == 1
    assert res.value("victim_ran") is False
    assert res.value("cancel_finished_is_noop") == "q"
    assert res.value("after") == "still-works"
    res.assert_ok()


def test_init_attach_reinit_shutdown(run_job):
    res = run_job(
        """
        import hpcray as ray

        @ray.remote
        def f(x):
            return x + 1

        @ray.remote
        def rank():
            return ray.get_runtime_context().get_rank()

        @check
        def first_init():
            ray.init()
            return ray.is_initialized()

        @check
        def second_init_raises():
            ray.init()

        @check
        def ignore_reinit():
            ray.init(num_cpus=2, ignore_reinit_error=True, include_dashboard=False,
                     namespace="x", address="auto")
            return ray.get(f.remote(1))

        @check
        def shutdown_then_init():
            ray.shutdown()
            after_shutdown = ray.is_initialized()
            ray.init()
            return [after_shutdown, ray.is_initialized(), ray.get(f.remote(2)),
                    ray.get(rank.remote()) >= 1]

        @check
        def twice_more():
            ray.shutdown()
            ray.init()
            return ray.get([f.remote(i) for i in range(5)])
        """,
        n=2, timeout=60,
    )
    assert res.value("first_init") is True
    err = res.error("second_init_raises")
    assert "RuntimeError" in err["mro"], err
    assert res.value("ignore_reinit") == 2
    assert res.value("shutdown_then_init") == [False, True, 3, True]
    assert res.value("twice_more") == [1, 2, 3, 4, 5]
    res.assert_ok()


RESOURCES = r"""
import hpcray as ray

@ray.remote
def f():
    return "ran"

def attempt(fn):
    try:
        ref = fn()
    except Exception as e:
        return {"where": "remote", "type": type(e).__name__, "msg": str(e)}
    try:
        v = ray.get(ref, timeout=20)
    except ray.exceptions.GetTimeoutError:
        return {"where": "hang"}
    except Exception as e:
        return {"where": "get", "type": type(e).__name__, "msg": str(e)}
    return {"where": "succeeded", "value": v}

record("cpus", attempt(lambda: f.options(num_cpus=1000).remote()))
record("custom", attempt(lambda: f.options(resources={"unobtainium": 1}).remote()))

@ray.remote(resources={"unobtainium": 2})
def g():
    return 1
record("custom_decorator", attempt(lambda: g.remote()))
record("after", ray.get(f.remote()))
"""


@pytest.mark.parametrize("n", [1, 2])
def test_infeasible_resources_fail_promptly(run_job, n):
    res = run_job(RESOURCES, n=n, timeout=90)
    for name, needle in (("cpus", "cpu"), ("custom", "unobtainium"), ("custom_decorator", "unobtainium")):
        d = res.value(name)
        assert d["where"] in ("remote", "get"), (name, d)
        assert needle in d["msg"].lower(), (name, d)
    assert res.value("after") == "ran"
    res.assert_ok()
    assert res.duration < 30, res.describe()


FIB = r"""
import sys
import hpcray as ray

@ray.remote
def fib(n):
    if n < 2:
        return n
    return sum(ray.get([fib.remote(n - 1), fib.remote(n - 2)]))

record("fib10", ray.get(fib.remote(10)))
record("fib15", ray.get(fib.remote(int(sys.argv[1]))))
"""


@pytest.mark.parametrize("n", [1, 3])
def test_nested_fib(run_job, n):
    res = run_job(FIB, n=n, args=[15], timeout=150)
    assert res.value("fib10") == 55
    assert res.value("fib15") == 610
    res.assert_ok()


def test_api_surface_without_init(run_job):
    """``import hpcray as ray`` exposes Ray's core names; nothing starts on import."""
    res = run_job(
        """
        import hpcray as ray
        names = ["remote", "get", "put", "wait", "cancel", "init", "shutdown", "is_initialized",
                 "get_runtime_context", "cluster_resources", "ObjectRef", "exceptions"]
        record("missing", [n for n in names if not hasattr(ray, n)])
        exc = ray.exceptions
        enames = ["TaskError", "RayTaskError", "GetTimeoutError", "TaskCancelledError",
                  "SerializationError"]
        record("missing_exceptions", [n for n in enames if not hasattr(exc, n)])
        record("subclassing", [issubclass(exc.GetTimeoutError, TimeoutError),
                               issubclass(exc.SerializationError, TypeError),
                               issubclass(exc.RayTaskError, exc.TaskError)
                               or issubclass(exc.TaskError, exc.RayTaskError)])
        record("initialized_after_import", ray.is_initialized())

        @ray.remote
        def f(x):
            return x

        @check
        def direct_call_without_init():
            f(1)
        """,
        embedded=True, timeout=60,
    )
    assert res.value("missing") == []
    assert res.value("missing_exceptions") == []
    assert res.value("subclassing") == [True, True, True]
    assert res.value("initialized_after_import") is False
    err = res.error("direct_call_without_init")
    assert "TypeError" in err["mro"] and ".remote(" in err["msg"], err
    res.assert_ok()
    assert res.leftover == [], res.describe()


@pytest.mark.parametrize("n", [1, 2])
def test_nested_get_wakes_promptly(run_job, n):
    """A task blocked in ``get`` on a child task must wake when the child's
    result arrives, not on some polling timer: ten nested round trips and a
    depth-8 chain take milliseconds each, so generous bounds (~50x) hold even
    on a loaded 2-core machine."""
    res = run_job(
        """
        import time
        import hpcray as ray

        @ray.remote
        def leaf(x):
            return x

        @ray.remote
        def mid(x):
            return ray.get(leaf.remote(x)) + 1

        @ray.remote
        def chain(k):
            return 0 if k == 0 else 1 + ray.get(chain.remote(k - 1))

        ray.get(mid.remote(0))            # warm up (function export, first spawn)
        t0 = time.monotonic()
        vals = [ray.get(mid.remote(i)) for i in range(10)]
        record("ten_nested", [vals == list(range(1, 11)), time.monotonic() - t0])
        t0 = time.monotonic()
        v = ray.get(chain.remote(8))
        record("chain8", [v, time.monotonic() - t0])
        """,
        n=n, timeout=90,
    )
    ok, took = res.value("ten_nested")
    assert ok is True
    assert took < 3.0, f"10 sequential nested gets took {took:.2f}s\n" + res.describe()
    v, took = res.value("chain8")
    assert v == 8
    assert took < 3.0, f"a depth-8 chain of nested gets took {took:.2f}s\n" + res.describe()
    res.assert_ok()


@pytest.mark.parametrize("n", [1, 3])
def test_api_from_many_threads(run_job, n):
    """Driver threads submit, get and put at once (an executor of hpcray calls)."""
    res = run_job("""
        import numpy as np
        from concurrent.futures import ThreadPoolExecutor
        import hpcray as ray

        @ray.remote
        def double(x):
            return x * 2

        def work(i):
            out = []
            for j in range(100):
                out.append(ray.get(double.remote(i * 1000 + j)))
                if j % 25 == 0:
                    ref = ray.put(np.full(100_000, float(i)))
                    assert float(ray.get(ref)[0]) == float(i)
            return out

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(work, range(6)))
        record("ok", all(r == [2 * (i * 1000 + j) for j in range(100)]
                         for i, r in enumerate(results)))
        """, n=n, timeout=120)
    res.assert_ok()
    assert res.value("ok") is True
