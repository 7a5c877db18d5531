"""Task- and actor-level microbenchmark for hpcray, with Ray's metric names, side by side with Ray.

Run it either way::

    mpiexec -n 3 python -m hpcray benchmarks/microbenchmark.py   # rank 0 + 2 worker ranks
    python benchmarks/microbenchmark.py                          # hpcray.init(num_cpus=2)

hpcray runs in this process. Then, when ``ray`` can be imported (by this interpreter, or
by the one named with ``--ray-python``) and ``--no-ray`` is not given, the same metric
functions run on Ray in a subprocess (``--backend ray --json``, ``ray.init(num_cpus=2)``)
and a table compares the two. Every metric is one function ``f(ray, duration)`` that
uses only Ray's public API, so it runs unchanged on both.

Options: ``--quick`` (short timings), ``--json`` (print one JSON document instead of the
table), ``--backend {all,hpcray,ray}``, ``--no-ray``, ``--only a,b`` / ``--skip a,b``
(metric names), ``--duration SECONDS``, ``--ray-python PATH``, ``--num-cpus N``.

A metric that raises (or overruns its time limit) is reported as ``error: ...`` in its
row; the run goes on with the next metric.
"""

import argparse
import functools
import importlib
import importlib.util
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)


# --------------------------------------------------------------------------------------
# Task bodies. Plain module-level functions: each metric wraps them with ray.remote(),
# so the same bodies serve hpcray and Ray.
# --------------------------------------------------------------------------------------

def _small_value():
    return b"ok"


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


def _make_fib(ray):
    """Recursive remote fibonacci: every call blocks in ray.get on its two children."""

    @ray.remote
    def fib(n):
        if n < 2:
            return n
        a, b = ray.get([fib.remote(n - 1), fib.remote(n - 2)])
        return a + b

    return fib


def _fib_local(n):
    return n if n < 2 else _fib_local(n - 1) + _fib_local(n - 2)


# Actor bodies, as in Ray's ray_perf.py: plain classes that each metric wraps with
# ray.remote(num_cpus=0) (Ray's ``Actor`` asks for no CPU, so any number can be placed).

class _Actor:
    """A plain actor with a no-op method (one call at a time, unless max_concurrency)."""

    def small_value(self):
        return b"ok"


class _AsyncActor:
    """An async actor: an ``async def`` method makes every call a coroutine on its loop."""

    async def small_value(self):
        return b"ok"


def _make_client(ray):
    """Ray's ``Client`` actor: one caller that calls each of its servers ``n`` times,
    then gets all the results (the caller of ``1_n_actor_calls_async``)."""

    class Client:
        def __init__(self, servers):
            self.servers = list(servers)

        def small_value_batch(self, n):
            ray.get([s.small_value.remote() for s in self.servers for _ in range(n)])

    return ray.remote(num_cpus=0)(Client)


def _make_actor_work(ray):
    """Ray's ``work`` task of ``n:n actor calls async``: ``n`` calls spread round-robin
    over the actors it is given, then a get of all of them."""

    @ray.remote
    def work(actors, n):
        ray.get([actors[i % len(actors)].small_value.remote() for i in range(n)])

    return work


# --------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------

def _rate(fn, duration, multiplier=1.0, max_calls=None, warmup=1):
    """Calls ``fn`` repeatedly for about ``duration`` seconds; returns multiplier*calls/s.

    Like Ray's ``timeit`` (ray/_private/ray_microbenchmark_helpers.py) but bounded to one
    short window instead of 1 s warm-up plus 4 x 2 s.
    """
    for _ in range(warmup):
        fn()
    count = 0
    start = time.perf_counter()
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= duration or (max_calls is not None and count >= max_calls):
            break
    return multiplier * count / elapsed


def _repeat_seconds(fn, budget, max_runs=5):
    """Runs ``fn`` once, then again while the budget lasts; returns (median, samples)."""
    samples = []
    total_start = time.perf_counter()
    while True:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
        if len(samples) >= max_runs or time.perf_counter() - total_start >= budget:
            break
    return statistics.median(samples), samples


def _round_trip_us(call, duration):
    """Times ``call()`` one at a time for about ``duration`` seconds (at least 5 calls,
    after one warm-up call); returns (median microseconds, extras with percentiles)."""
    call()
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < duration or len(samples) < 5:
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1e6
    return statistics.median(samples) * 1e6, {"p10_us": p(0.10), "p90_us": p(0.90),
                                              "p99_us": p(0.99), "calls": len(samples)}


# --------------------------------------------------------------------------------------
# The metrics: one function each, taking the module (hpcray or ray) and a duration.
# A function returns a float, or (float, extras) where extras go into the JSON only.
# --------------------------------------------------------------------------------------

def single_client_tasks_sync(ray, duration):
    """Tasks/s of ``ray.get(f.remote())`` in a loop: one task in flight at a time."""
    f = ray.remote(_small_value)
    return _rate(lambda: ray.get(f.remote()), duration)


def sync_task_round_trip_us(ray, duration):
    """Median microseconds of one ``ray.get(f.remote())`` of a no-op task."""
    f = ray.remote(_small_value)
    return _round_trip_us(lambda: ray.get(f.remote()), duration)


def single_client_tasks_async(ray, duration):
    """Tasks/s: submit 1000 no-op tasks, then get all of them (Ray's multiplier 1000)."""
    f = ray.remote(_small_value)
    n = 1000
    return _rate(lambda: ray.get([f.remote() for _ in range(n)]), duration, multiplier=n)


def single_client_tasks_and_get_batch(ray, duration):
    """Batches/s, one batch = submit 1000 no-op tasks and get them (Ray counts batches)."""
    f = ray.remote(_small_value)
    return _rate(lambda: ray.get([f.remote() for _ in range(1000)]), duration)


def single_client_put_calls(ray, duration):
    """Puts/s of a small value (``ray.put(0)``)."""
    return _rate(lambda: ray.put(0), duration)


def single_client_get_calls(ray, duration):
    """Gets/s of one small object that was put once."""
    ref = ray.put(0)
    return _rate(lambda: ray.get(ref), duration)


PUT_BYTES = 100 * 1000 * 1000  # 100 MB (decimal), int64


def single_client_put_gigabytes(ray, duration):
    """GB/s (1 GB = 1e9 bytes) of ``ray.put`` of a 100 MB numpy array.

    The array is filled (not ``np.zeros``, whose untouched pages read as the shared zero
    page and flatter the copy). Each ref is dropped at once so the store can free it;
    at most 30 puts are made, to bound memory if freeing lags.
    """
    arr = np.ones(PUT_BYTES // 8, dtype=np.int64)
    return _rate(lambda: ray.put(arr), duration, multiplier=PUT_BYTES / 1e9, max_calls=30)


def single_client_get_100MB_us(ray, duration):
    """Median microseconds of ``ray.get`` of a 100 MB array put on the same node (zero-copy
    in hpcray: independent of size)."""
    ref = ray.put(np.ones(PUT_BYTES // 8, dtype=np.int64))
    ray.get(ref)
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < duration or len(samples) < 5:
        t0 = time.perf_counter()
        value = ray.get(ref)
        samples.append(time.perf_counter() - t0)
        del value
    return statistics.median(samples) * 1e6, {"calls": len(samples)}


def get_100MB_in_task_us(ray, duration):
    """Median microseconds of ``ray.get`` of a 100 MB array, inside a task (its worker
    process in hpcray), the ref passed nested so the task gets it itself; the first get is
    not counted."""
    ref = ray.put(np.ones(PUT_BYTES // 8, dtype=np.int64))

    @ray.remote
    def timed(refs, seconds):
        import statistics as _statistics
        import time as _time
        ray.get(refs[0])
        samples = []
        start = _time.perf_counter()
        while _time.perf_counter() - start < seconds or len(samples) < 5:
            t0 = _time.perf_counter()
            value = ray.get(refs[0])
            samples.append(_time.perf_counter() - t0)
            del value
        return _statistics.median(samples) * 1e6, len(samples)

    median, calls = ray.get(timed.remote([ref], duration))
    return median, {"calls": calls}


def _produce(nbytes):
    import numpy as _np
    return _np.ones(nbytes // 8, dtype=_np.int64)


def transfer_200MB_between_nodes_gigabytes(ray, duration):
    """GB/s of moving a 200 MB array made by a task on another node to the driver's node.

    Needs two nodes: real ones, or simulated (``python -m hpcray --ranks-per-node K``). The
    time is a ``get`` of the finished task's result (the copy), not the task itself; the
    first round warms the stores' pages up and is not counted."""
    return _transfer_between_nodes(ray, duration, 200 * 1000 * 1000)


def transfer_100MB_between_nodes_gigabytes(ray, duration):
    """The same with 100 MB (``benchmarks/transports.py``)."""
    return _transfer_between_nodes(ray, duration, 100 * 1000 * 1000)


def _transfer_between_nodes(ray, duration, nbytes):
    node_of = getattr(ray, "get_runtime_context")().get_node_id()
    if len(ray.nodes()) < 2:
        raise RuntimeError("needs 2 nodes (e.g. mpiexec -n 5 python -m hpcray "
                           "--ranks-per-node 2 benchmarks/microbenchmark.py)")
    produce = ray.remote(_produce)
    where = ray.remote(lambda: ray.get_runtime_context().get_node_id())
    rates = []
    start = time.perf_counter()
    rounds = 0
    while (time.perf_counter() - start < duration or len(rates) < 3) and len(rates) < 12:
        rounds += 1
        refs = [produce.remote(nbytes) for _ in range(len(ray.nodes()) * 2)]
        nodes = ray.get([where.remote() for _ in refs])   # keep ranks busy alike
        ray.wait(refs, num_returns=len(refs))
        for ref in refs:
            t0 = time.perf_counter()
            value = ray.get(ref)
            elapsed = time.perf_counter() - t0
            # A copy happened (it came from another node); the first round, which also
            # faults in the store's fresh pages, is a warm-up.
            if elapsed > 0.005 and rounds > 1:
                rates.append(nbytes / elapsed / 1e9)
            del value
        del refs, nodes
        if not rates and rounds >= 4:
            raise RuntimeError(f"no task ran off the driver's node ({node_of})")
    return statistics.median(rates), {"copies": len(rates)}


def _add(a, b):
    return a + b


def tree_sum_16x8MB_ms(ray, duration):
    """Milliseconds to sum 16 arrays of 8 MB with a tree of ``add`` tasks (the pattern of
    Ray's documentation), arrays already in the object store."""
    add = ray.remote(_add)
    arrays = [ray.put(np.full(1_000_000, float(i))) for i in range(16)]
    expected = float(sum(range(16))) * 1_000_000

    def tree():
        level = list(arrays)
        while len(level) > 1:
            level = [add.remote(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        total = ray.get(level[0])
        assert float(total.sum()) == expected
    median, samples = _repeat_seconds(tree, max(duration, 1.0))
    return median * 1e3, {"runs_ms": [round(x * 1e3, 2) for x in samples]}


def single_client_wait_1k_refs(ray, duration):
    """Iterations/s; one iteration submits 1000 no-op tasks, then calls ``ray.wait``
    once per ref until none is left (as Ray's benchmark does)."""
    f = ray.remote(_small_value)

    def wait_multiple_refs():
        not_ready = [f.remote() for _ in range(1000)]
        for _ in range(1000):
            _ready, not_ready = ray.wait(not_ready)
        assert not not_ready

    return _rate(wait_multiple_refs, duration, warmup=0)


def fib_11_seconds(ray, duration):
    """Seconds of remote fib(11): 287 tasks, each non-leaf blocking in ``ray.get`` on its
    two children (nested tasks; a pool that cannot serve work while blocked deadlocks).
    Median of up to 5 runs inside the time budget (at least one)."""
    fib = _make_fib(ray)
    result = None

    def run():
        nonlocal result
        result = ray.get(fib.remote(11))

    median, samples = _repeat_seconds(run, duration)
    if result != _fib_local(11):
        raise AssertionError("fib(11) returned %r, expected %d" % (result, _fib_local(11)))
    return median, {"samples_s": samples}


def sleep_100x0_1s_seconds(ray, duration):
    """Seconds to run 100 tasks of ``time.sleep(0.1)`` submitted at once and got together.
    The floor is ceil(100 / workers) * 0.1 s: 5 s with 2 workers, 0.7 s with 16 ranks."""
    f = ray.remote(_sleep)
    start = time.perf_counter()
    ray.get([f.remote(0.1) for _ in range(100)])
    return time.perf_counter() - start


# Actor metrics, after Ray's ray_perf.py ("1:1 actor calls sync" and so on). Each metric
# creates its actors; they end when the metric returns and its handles are dropped. The
# first (warm-up) round of ``_rate`` includes the actors' creation and is not counted.

ACTOR_BATCH = 1000            # calls per batch of the 1:1 batch metrics (Ray's 1000)
ACTOR_CALLS_PER_SERVER = 5000  # calls per actor (1:n) or per caller task (n:n), Ray's n
NN_CALLERS = 4                # caller tasks of n:n (Ray's m)


def _actor_count(ray):
    """The ``n`` of 1:n and n:n: one actor per worker CPU (Ray: cpu_count() // 2)."""
    return max(1, _worker_count(ray) or 1)


def actor_calls_sync_1_1(ray, duration):
    """Calls/s of ``ray.get(a.small_value.remote())`` in a loop, one actor, one caller."""
    a = ray.remote(num_cpus=0)(_Actor).remote()
    return _rate(lambda: ray.get(a.small_value.remote()), duration)


def actor_call_round_trip_us(ray, duration):
    """Median microseconds of one synchronous no-op actor call (``ray.get`` of it)."""
    a = ray.remote(num_cpus=0)(_Actor).remote()
    return _round_trip_us(lambda: ray.get(a.small_value.remote()), duration)


def actor_calls_async_1_1(ray, duration):
    """Calls/s: submit 1000 no-op calls to one actor, then get them all (Ray's 1000x)."""
    a = ray.remote(num_cpus=0)(_Actor).remote()
    n = ACTOR_BATCH
    return _rate(lambda: ray.get([a.small_value.remote() for _ in range(n)]), duration,
                 multiplier=n)


def actor_calls_concurrent_1_1(ray, duration):
    """Calls/s as ``1_1_actor_calls_async``, to a threaded actor (``max_concurrency=16``)."""
    a = ray.remote(num_cpus=0)(_Actor).options(max_concurrency=16).remote()
    n = ACTOR_BATCH
    return _rate(lambda: ray.get([a.small_value.remote() for _ in range(n)]), duration,
                 multiplier=n)


def actor_calls_async_1_n(ray, duration):
    """Calls/s of one caller to n actors (n = worker CPUs). As in Ray, the caller is a
    ``Client`` actor: the driver asks it for a batch, it makes 5000 calls to each actor
    and gets them all."""
    Actor = ray.remote(num_cpus=0)(_Actor)
    actors = [Actor.remote() for _ in range(_actor_count(ray))]
    client = _make_client(ray).remote(actors)
    n = ACTOR_CALLS_PER_SERVER
    rate = _rate(lambda: ray.get(client.small_value_batch.remote(n)), duration,
                 multiplier=n * len(actors))
    return rate, {"actors": len(actors)}


def actor_calls_async_n_n(ray, duration):
    """Calls/s of 4 caller tasks to n actors (n = worker CPUs), as Ray's ``n:n actor calls
    async``: each task makes 5000 calls spread round-robin over all the actors, then gets
    them; a round is the 4 tasks submitted together (20000 calls)."""
    Actor = ray.remote(num_cpus=0)(_Actor)
    actors = [Actor.remote() for _ in range(_actor_count(ray))]
    work = _make_actor_work(ray)
    n, m = ACTOR_CALLS_PER_SERVER, NN_CALLERS
    rate = _rate(lambda: ray.get([work.remote(actors, n) for _ in range(m)]), duration,
                 multiplier=n * m)
    return rate, {"actors": len(actors), "callers": m}


def async_actor_calls_async_1_1(ray, duration):
    """Calls/s: submit 1000 calls of an ``async def`` no-op method to one async actor,
    then get them all."""
    a = ray.remote(num_cpus=0)(_AsyncActor).remote()
    n = ACTOR_BATCH
    return _rate(lambda: ray.get([a.small_value.remote() for _ in range(n)]), duration,
                 multiplier=n)


def _identity(x):
    return x


def _items(n):
    for i in range(n):
        yield i


GENERATOR_ITEMS = 1000


def generator_items_per_second(ray, duration):
    """Items/s of a generator task (``num_returns="streaming"``) yielding 1000 small items,
    each taken with ``next`` and got by the caller while the task runs."""
    gen = ray.remote(_items)

    def run():
        total = 0
        for ref in gen.remote(GENERATOR_ITEMS):
            total += ray.get(ref)
        if total != GENERATOR_ITEMS * (GENERATOR_ITEMS - 1) // 2:
            raise AssertionError("a generator lost items")
    median, samples = _repeat_seconds(run, duration)
    return GENERATOR_ITEMS / median, {"samples_s": samples}


def placement_group_ready_ms(ray, duration):
    """Milliseconds to create a placement group of one 1-CPU bundle, see it ready, and
    remove it (the first one of the job is in the samples, cold)."""
    util = importlib.import_module(ray.__name__ + ".util.placement_group")

    def once():
        group = util.placement_group([{"CPU": 1}], strategy="PACK")
        ray.get(group.ready(), timeout=60)
        util.remove_placement_group(group)
    samples = []
    start = time.perf_counter()
    while not samples or (time.perf_counter() - start < duration and len(samples) < 50):
        t0 = time.perf_counter()
        once()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples), {"first_ms": samples[0], "runs": len(samples)}


def ref_argument_round_trip_us(ray, duration):
    """Round trip of ``ray.get(f.remote(ref))``: a task whose argument is an ObjectRef (of
    a small object already there), resolved to its value before the call."""
    step = ray.remote(_identity)
    ref = ray.put(b"x" * 100)
    return _round_trip_us(lambda: ray.get(step.remote(ref)), duration)


def dag_execute_us(ray, duration):
    """Round trip of ``dag.execute(x)`` for a graph of two chained tasks (``bind``,
    ``InputNode``), then ``get`` of its result."""
    dag_api = importlib.import_module(ray.__name__ + ".dag")
    step = ray.remote(_identity)
    with dag_api.InputNode() as inp:
        graph = step.bind(step.bind(inp))
    return _round_trip_us(lambda: ray.get(graph.execute(1)), duration)


CREATE_ACTORS = 1000
CREATE_ACTORS_CAP_S = 120.0    # a round not done by then is reported as an error


def create_1000_actors_and_call_seconds(ray, duration):
    """Seconds to create 1000 actors, call each once and get the 1000 results. Median of
    up to 3 rounds within the time budget (at least one). A round that has not finished
    in 120 s (Ray starts a process per actor) raises TimeoutError with how far it got;
    the metric's time limit is raised to match (``METRIC_TIME_LIMITS``)."""
    Actor = ray.remote(num_cpus=0)(_Actor)

    def run():
        start = time.perf_counter()
        actors = [Actor.remote() for _ in range(CREATE_ACTORS)]
        refs = [a.small_value.remote() for a in actors]
        ready, not_ready = ray.wait(refs, num_returns=len(refs),
                                    timeout=max(0.0, CREATE_ACTORS_CAP_S -
                                                (time.perf_counter() - start)))
        if not_ready:
            raise TimeoutError("%d of %d actors answered within %g s" % (
                len(ready), len(refs), CREATE_ACTORS_CAP_S))
        values = ray.get(refs)
        if values != [b"ok"] * len(refs):
            raise AssertionError("an actor call returned something other than b'ok'")

    median, samples = _repeat_seconds(run, duration, max_runs=3)
    return median, {"samples_s": samples}


# init: measured in a fresh subprocess for both backends, so that hpcray under mpiexec
# (where the launcher has already initialised this process) measures a real start-up.
_INIT_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import {module} as ray
t1 = time.perf_counter()
ray.init(num_cpus={num_cpus})
t2 = time.perf_counter()
def one():
    return 1
assert ray.get(ray.remote(one).remote()) == 1
t3 = time.perf_counter()
ray.shutdown()
t4 = time.perf_counter()
print("INIT_PROBE " + json.dumps({{"import_s": t1 - t0, "init_s": t2 - t1,
                                   "first_task_s": t3 - t2, "shutdown_s": t4 - t3}}))
sys.stdout.flush()
"""


@functools.lru_cache(maxsize=None)
def _init_probe(module, python, num_cpus):
    code = _INIT_PROBE.format(module=module, num_cpus=num_cpus)
    start = time.perf_counter()
    proc = subprocess.run([python, "-c", code], env=_clean_env(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120)
    wall = time.perf_counter() - start
    for line in proc.stdout.splitlines():
        if line.startswith("INIT_PROBE "):
            out = json.loads(line[len("INIT_PROBE "):])
            out["process_wall_s"] = wall
            return out
    lines = [l.strip() for l in (proc.stderr or proc.stdout or "").splitlines() if l.strip()]
    raise RuntimeError("init probe exited %d: %s" % (proc.returncode,
                                                     lines[-1] if lines else "no output"))


def init_seconds(ray, duration):
    """Seconds of ``init(num_cpus=2)`` in a fresh ``python -c`` process (not counting
    ``import``). Extras: import, first task and shutdown times, whole-process wall time."""
    probe = _init_probe(ray.__name__, sys.executable, 2)
    return probe["init_s"], dict(probe)


def init_and_first_task_seconds(ray, duration):
    """Seconds from the start of ``init(num_cpus=2)`` to the first task result, in the
    same fresh process as ``init_seconds``: catches start-up work deferred past init()."""
    probe = _init_probe(ray.__name__, sys.executable, 2)
    return probe["init_s"] + probe["first_task_s"]


# name, function, unit, higher_is_better, target (text, predicate on value or None)
METRICS = [
    ("init_seconds", init_seconds, "s", False, ("<= 1 s", lambda v, w: v <= 1.0)),
    ("init_and_first_task_seconds", init_and_first_task_seconds, "s", False, None),
    ("single_client_tasks_sync", single_client_tasks_sync, "tasks/s", True, None),
    ("sync_task_round_trip_us", sync_task_round_trip_us, "us", False,
     ("<= 100 us", lambda v, w: v <= 100.0)),
    ("single_client_tasks_async", single_client_tasks_async, "tasks/s", True,
     (">= 20000/s", lambda v, w: v >= 20000)),
    ("single_client_tasks_and_get_batch", single_client_tasks_and_get_batch,
     "batches/s", True, None),
    ("single_client_put_calls", single_client_put_calls, "puts/s", True, None),
    ("single_client_get_calls", single_client_get_calls, "gets/s", True, None),
    ("single_client_put_gigabytes", single_client_put_gigabytes, "GB/s", True, None),
    ("single_client_get_100MB_us", single_client_get_100MB_us, "us", False,
     ("<= 50 us", lambda v, w: v <= 50)),
    ("get_100MB_in_task_us", get_100MB_in_task_us, "us", False,
     ("<= 50 us", lambda v, w: v <= 50)),
    ("transfer_200MB_between_nodes_gigabytes", transfer_200MB_between_nodes_gigabytes,
     "GB/s", True, (">= 2 GB/s", lambda v, w: v >= 2.0)),
    ("transfer_100MB_between_nodes_gigabytes", transfer_100MB_between_nodes_gigabytes,
     "GB/s", True, None),
    ("tree_sum_16x8MB_ms", tree_sum_16x8MB_ms, "ms", False, ("<= 60 ms", lambda v, w: v <= 60)),
    ("single_client_wait_1k_refs", single_client_wait_1k_refs, "iters/s", True, None),
    ("fib_11_seconds", fib_11_seconds, "s", False, ("< 1 s", lambda v, w: v < 1.0)),
    # Only judged with 15 or more workers (16 ranks): the floor is 5 s on 2 workers.
    ("sleep_100x0.1s_seconds", sleep_100x0_1s_seconds, "s", False,
     ("< 1 s @16 ranks", lambda v, w: (v < 1.0) if (w or 0) >= 15 else None)),
    ("generator_items_per_second", generator_items_per_second, "items/s", True, None),
    ("placement_group_ready_ms", placement_group_ready_ms, "ms", False, None),
    ("ref_argument_round_trip_us", ref_argument_round_trip_us, "us", False, None),
    ("dag_execute_us", dag_execute_us, "us", False, None),
    # Actors, with Ray's names (ray_perf.py: "1:1 actor calls sync" -> 1_1_actor_calls_sync).
    ("1_1_actor_calls_sync", actor_calls_sync_1_1, "calls/s", True, None),
    ("actor_call_round_trip_us", actor_call_round_trip_us, "us", False,
     ("<= 100 us", lambda v, w: v <= 100.0)),
    ("1_1_actor_calls_async", actor_calls_async_1_1, "calls/s", True,
     (">= 30000/s", lambda v, w: v >= 30000)),
    ("1_1_actor_calls_concurrent", actor_calls_concurrent_1_1, "calls/s", True, None),
    ("1_n_actor_calls_async", actor_calls_async_1_n, "calls/s", True, None),
    ("n_n_actor_calls_async", actor_calls_async_n_n, "calls/s", True, None),
    ("1_1_async_actor_calls_async", async_actor_calls_async_1_1, "calls/s", True, None),
    # Last: on Ray it may leave hundreds of worker processes behind when it times out.
    ("create_1000_actors_and_call_seconds", create_1000_actors_and_call_seconds, "s", False,
     ("<= 2 s", lambda v, w: v <= 2.0)),
]
METRIC_NAMES = [m[0] for m in METRICS]

# Per-metric limit so that one hung metric cannot hang the whole run.
METRIC_TIMEOUT_S = 120
# Metrics that need longer than --metric-timeout: their own cap, plus room to clean up.
METRIC_TIME_LIMITS = {"create_1000_actors_and_call_seconds": CREATE_ACTORS_CAP_S + 60}


def _time_limit(mname, args):
    return max(args.metric_timeout, METRIC_TIME_LIMITS.get(mname, 0))


# --------------------------------------------------------------------------------------
# Running one backend
# --------------------------------------------------------------------------------------

# Variables that tell a child process it is a rank of the parent's MPI job. A child of
# rank 0 must start on its own (singleton), so they are removed from its environment.
_LAUNCHER_ENV_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "OMPI_", "MPI_LOCALRANKID",
                          "MPI_LOCALNRANKS")


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_ENV_PREFIXES)}
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Let a child find hpcray from a source checkout even when it is not pip-installed.
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if REPO_ROOT not in parts:
        env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + parts)
    return env


def _under_mpi_launcher():
    """True when this process is a rank started by mpiexec/srun (python -m hpcray)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None:
        try:
            if mpi.Is_initialized() and mpi.COMM_WORLD.Get_size() > 1:
                return True
        except Exception:
            pass
    # Set by Hydra (mpiexec), srun --mpi=pmi2, PMIx launchers and Open MPI: true even with
    # one rank. ``import hpcray`` initialises MPI in a plain process too, so
    # MPI.Is_initialized() alone cannot tell.
    return any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"))


def _import_backend(name):
    if name == "hpcray" and importlib.util.find_spec("hpcray") is None:
        sys.path.insert(0, REPO_ROOT)  # source checkout, not installed
    return importlib.import_module(name)


def _error_text(exc):
    """One line: the type and the last non-empty line of the message (MPI error stacks and
    remote tracebacks put the telling part last)."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    return "%s: %s" % (type(exc).__name__, lines[-1] if lines else "")


class _MetricTimeout(Exception):
    pass


def _call_with_timeout(fn, seconds):
    """Runs fn(); raises _MetricTimeout after ``seconds`` (SIGALRM, main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn()

    def on_alarm(signum, frame):
        raise _MetricTimeout("timed out after %g s" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _worker_count(ray):
    """Processes that execute tasks: hpcray's ranks other than the head (its world size is
    an hpcray extension of the runtime context), else the cluster's logical CPUs."""
    try:
        size = ray.get_runtime_context().get_world_size()
        if size > 1:
            return size - 1
    except Exception:
        pass
    try:
        cpus = ray.cluster_resources().get("CPU")
        if cpus:
            return int(cpus)
    except Exception:
        pass
    return None


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_backend(name, args):
    """Runs the selected metrics on backend ``name`` in this process; returns a dict."""
    doc = {"backend": name, "host": socket.gethostname(), "python": platform.python_version(),
           "quick": args.quick, "duration_s": args.duration, "metrics": {}}
    ray = _import_backend(name)
    doc["version"] = getattr(ray, "__version__", "?")
    selected = [m for m in METRICS if m[0] in args.selected]

    # init_seconds runs a fresh process: do it before this process initialises `ray`, so
    # that two Ray instances never start at once.
    for metric in selected:
        if metric[0].startswith("init"):
            _run_metric(ray, metric, args, doc)

    we_initialised = False
    is_init = getattr(ray, "is_initialized", None)
    if not (is_init and is_init()):
        if name == "hpcray" and _under_mpi_launcher():
            doc["mode"] = "mpi launcher"
            init = lambda: ray.init()
        else:
            doc["mode"] = "embedded" if name == "hpcray" else "local"
            init = lambda: ray.init(num_cpus=args.num_cpus)
        try:
            _call_with_timeout(init, args.metric_timeout)
        except Exception as exc:  # every remaining metric reports the failure
            error = "init failed: " + _error_text(exc)
            _log("[%s] %s" % (name, error))
            for metric in selected:
                if not metric[0].startswith("init"):
                    doc["metrics"][metric[0]] = {"unit": metric[2],
                                                 "higher_is_better": metric[3],
                                                 "error": error}
            return doc
        we_initialised = True
    else:
        doc["mode"] = "mpi launcher" if _under_mpi_launcher() else "already initialised"
    doc["workers"] = _worker_count(ray)
    _log("[%s %s] mode=%s workers=%s" % (name, doc["version"], doc["mode"], doc["workers"]))

    try:
        for metric in selected:
            if not metric[0].startswith("init"):
                _run_metric(ray, metric, args, doc)
    finally:
        if we_initialised:
            try:
                ray.shutdown()
            except Exception as exc:  # a failing shutdown must not lose the figures
                _log("[%s] shutdown failed: %r" % (name, exc))
    return doc


def _run_metric(ray, metric, args, doc):
    mname, fn, unit, higher, target = metric
    entry = {"unit": unit, "higher_is_better": higher}
    _log("[%s] %s ..." % (doc["backend"], mname))
    start = time.perf_counter()
    try:
        out = _call_with_timeout(lambda: fn(ray, args.duration), _time_limit(mname, args))
        value, extras = (out if isinstance(out, tuple) else (out, None))
        entry["value"] = float(value)
        if extras:
            entry["extra"] = extras
    except BaseException as exc:  # report and continue (KeyboardInterrupt still stops)
        if isinstance(exc, KeyboardInterrupt):
            raise
        entry["error"] = _error_text(exc)
    entry["wall_s"] = time.perf_counter() - start
    doc["metrics"][mname] = entry
    _log("[%s] %s = %s" % (doc["backend"], mname,
                           _fmt(entry["value"]) if "value" in entry else "error: " + entry["error"]))


# --------------------------------------------------------------------------------------
# Ray in a subprocess
# --------------------------------------------------------------------------------------

def _ray_available(python):
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return importlib.util.find_spec("ray") is not None
    try:
        return subprocess.run([python, "-c", "import ray"], env=_clean_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_ray_subprocess(args):
    """Runs this script with ``--backend ray --json`` and returns Ray's result dict."""
    cmd = [args.ray_python, os.path.abspath(__file__), "--backend", "ray", "--json",
           "--duration", repr(args.duration), "--num-cpus", str(args.num_cpus),
           "--only", ",".join(args.selected), "--metric-timeout", repr(args.metric_timeout)]
    if args.quick:
        cmd.append("--quick")
    _log("[ray] running: %s" % " ".join(cmd))
    # Ray's own chatter goes to stderr, which is passed through; the JSON is stdout's
    # last line that starts with '{'.
    proc = subprocess.run(cmd, env=_clean_env(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, text=True,
                          timeout=60 + sum(_time_limit(m, args) + 10 for m in args.selected))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["runs"]["ray"]
    raise RuntimeError("ray subprocess exited %d without JSON" % proc.returncode)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

def _fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) >= 10:
        return "{:.1f}".format(v)
    return "{:.3g}".format(v)


def _cell(doc, mname):
    if doc is None:
        return "-"
    entry = doc["metrics"].get(mname)
    if entry is None:
        return "-"
    if "error" in entry:
        msg = entry["error"]
        return "error: " + (msg if len(msg) <= 40 else msg[:37] + "...")
    return _fmt(entry["value"])


def _ratio(hdoc, rdoc, mname, higher):
    """How many times better hpcray is than Ray (>1: hpcray better), either direction."""
    try:
        h = hdoc["metrics"][mname]["value"]
        r = rdoc["metrics"][mname]["value"]
    except (KeyError, TypeError):
        return "-"
    if h <= 0 or r <= 0:
        return "-"
    return "%.2fx" % (h / r if higher else r / h)


def print_table(hdoc, rdoc, ray_note):
    rows = [("metric", "unit", "hpcray", "ray", "hpcray vs ray", "target")]
    for mname, _fn, unit, higher, target in METRICS:
        if hdoc is not None and mname not in hdoc["metrics"] and (
                rdoc is None or mname not in rdoc["metrics"]):
            continue
        tcell = "-"
        if target is not None and hdoc is not None:
            text, check = target
            entry = hdoc["metrics"].get(mname, {})
            verdict = check(entry["value"], hdoc.get("workers")) if "value" in entry else "-"
            tcell = "%s %s" % (text, {True: "ok", False: "MISS", None: "(n/a here)",
                                      "-": "(no value)"}[verdict])
        rows.append((mname, unit, _cell(hdoc, mname), _cell(rdoc, mname),
                     _ratio(hdoc, rdoc, mname, higher) if rdoc else "-", tcell))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) if i < 5 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    for label, doc in (("hpcray", hdoc), ("ray", rdoc)):
        if doc is not None:
            print("%s %s: mode=%s, workers=%s, host=%s, python %s" % (
                label, doc.get("version"), doc.get("mode"), doc.get("workers"),
                doc.get("host"), doc.get("python")))
    if ray_note:
        print("ray: %s" % ray_note)
    for label, doc in (("hpcray", hdoc), ("ray", rdoc)):
        failed = {}  # error text -> metrics, so that one init failure prints once
        for mname, entry in (doc or {}).get("metrics", {}).items():
            if "error" in entry:
                failed.setdefault(entry["error"], []).append(mname)
        for error, names in failed.items():
            print("%s error in %s: %s" % (label, ", ".join(names), error))
    print("'hpcray vs ray' > 1 means hpcray is better (rates: hpcray/ray; times: ray/hpcray).")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["all", "hpcray", "ray"], default="all",
                   help="all: hpcray here, then Ray in a subprocess (default)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--quick", action="store_true", help="short timings (~0.3 s a metric)")
    p.add_argument("--no-ray", action="store_true", help="do not run Ray")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds per metric (default 1.5, or 0.3 with --quick)")
    p.add_argument("--only", default="", help="comma-separated metric names to run")
    p.add_argument("--skip", default="", help="comma-separated metric names to skip")
    p.add_argument("--num-cpus", type=int, default=2,
                   help="workers for the embedded/local runs (default 2)")
    p.add_argument("--ray-python", default=os.environ.get("HPCRAY_BENCH_RAY_PYTHON",
                                                          sys.executable),
                   help="interpreter that has ray installed (default: this one, or "
                        "$HPCRAY_BENCH_RAY_PYTHON)")
    p.add_argument("--metric-timeout", type=float, default=METRIC_TIMEOUT_S,
                   help="seconds before a metric is reported as an error (default 120; "
                        "create_1000_actors_and_call_seconds gets at least 180)")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 0.3 if args.quick else 1.5
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = [s for s in list(only) + list(skip) if s not in METRIC_NAMES]
    if unknown:
        p.error("unknown metric(s): %s (known: %s)" % (", ".join(unknown),
                                                        ", ".join(METRIC_NAMES)))
    args.selected = [m for m in METRIC_NAMES if (not only or m in only) and m not in skip]
    return args


def main(argv=None):
    args = parse_args(argv)
    hdoc = rdoc = None
    ray_note = None
    if args.backend in ("all", "hpcray"):
        hdoc = run_backend("hpcray", args)
    if args.backend == "ray":
        rdoc = run_backend("ray", args)
    elif args.backend == "all":
        if args.no_ray:
            ray_note = "skipped (--no-ray)"
        elif not _ray_available(args.ray_python):
            ray_note = "not installed for %s (use --ray-python)" % args.ray_python
        else:
            try:
                rdoc = run_ray_subprocess(args)
            except Exception as exc:
                ray_note = "error: %s: %s" % (type(exc).__name__, exc)
    if args.json:
        print(json.dumps({"runs": {"hpcray": hdoc, "ray": rdoc}, "ray_note": ray_note}))
    else:
        print_table(hdoc, rdoc, ray_note)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
