"""Job of tests/test_tasks.py::test_basics."""
import asyncio, concurrent.futures, pickle, time
import numpy as np
import hpcray as ray
from jobkit import check

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
