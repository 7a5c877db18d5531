"""Job of tests/test_generators.py: generator tasks and actor methods, written as a Ray user
writes them. It runs on hpcray, or on Ray itself (``RAY_MODULE=ray``), and the test compares
what both record."""
import asyncio
import importlib
import os
import time

import numpy as np

from jobkit import record

ray = importlib.import_module(os.environ.get("RAY_MODULE", "hpcray"))
ray.init()


@ray.remote
def gen(n, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"boom at {i}")
        yield i * 10


@ray.remote(num_returns="dynamic")
def dynamic(n):
    for i in range(n):
        yield i


@ray.remote
def slow_second():
    yield "first"
    time.sleep(3)
    yield "second"


@ray.remote
def forever():
    i = 0
    while True:
        time.sleep(0.02)
        yield i
        i += 1


@ray.remote(_generator_backpressure_num_objects=2)
def paced(n):
    for _ in range(n):
        yield time.monotonic()


@ray.remote
def consumer(n):
    return sum(ray.get(ref) for ref in gen.remote(n))


@ray.remote
def arrays():
    for i in range(3):
        yield np.full(1 << 20, i, dtype=np.uint8)


@ray.remote
def refs_inside():
    for i in range(3):
        yield [ray.put(i * 7)]


@ray.remote
class Producer:
    def __init__(self, base):
        self.base = base

    def items(self, n):
        for i in range(n):
            yield self.base + i

    def stamps(self, n):
        for _ in range(n):
            yield time.monotonic()

    @ray.method(num_returns="dynamic")
    def batch(self, n):
        for i in range(n):
            yield i


@ray.remote
class AsyncProducer:
    async def items(self, n):
        for i in range(n):
            await asyncio.sleep(0.01)
            yield i * 3


def values(refs):
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref))
        except ValueError as error:            # (RayTaskError(ValueError) on Ray)
            out.append(f"ValueError: {'boom at' in str(error)}")
    return out


stream = gen.remote(5)
record("type", type(stream).__name__)
record("items", values(stream))
record("error_mid_stream", values(gen.remote(5, fail_at=2)))
two = gen.remote(2)
firsts = [ray.get(next(two)), ray.get(next(two))]
try:
    next(two)
    firsts.append("no StopIteration")
except StopIteration:
    firsts.append("StopIteration")
record("next", firsts)
ref = dynamic.remote(3)
inner = ray.get(ref)
record("dynamic", [type(ref).__name__, type(inner).__name__, [ray.get(r) for r in inner]])

started = time.monotonic()
streaming = slow_second.remote()
first = ray.get(next(streaming))
record("first_item_while_running", [first, time.monotonic() - started < 2.5])
ready, not_ready = ray.wait([streaming], timeout=0.05)
record("wait_before_the_item", [len(ready), len(not_ready)])
ready, not_ready = ray.wait([streaming], timeout=30)
record("wait_once_it_came", [len(ready), len(not_ready), ray.get(next(streaming))])

paced_stream = paced.remote(5)                 # back-pressure: 2 items ahead at most
time.sleep(1.5)
stamps = [ray.get(ref) for ref in paced_stream]
record("backpressure", [len(stamps), stamps[2] - stamps[1] > 1.0,
                        max(stamps[3:]) - stamps[2] < 1.0])
record("nested", ray.get(consumer.remote(4)))
record("arrays", [int(ray.get(r)[0]) for r in arrays.remote()])
record("refs_inside", [ray.get(ray.get(r)[0]) for r in refs_inside.remote()])

producer = Producer.remote(100)
record("actor_items", [ray.get(r) for r in producer.items.remote(3)])
record("actor_dynamic", [ray.get(r) for r in ray.get(producer.batch.remote(2))])
paced_calls = producer.stamps.options(_generator_backpressure_num_objects=2).remote(5)
time.sleep(1.5)
stamps = [ray.get(ref) for ref in paced_calls]
record("actor_backpressure", [len(stamps), stamps[2] - stamps[1] > 1.0])
record("async_actor_items", [ray.get(r) for r in AsyncProducer.remote().items.remote(4)])

endless = forever.remote()
ray.get(next(endless))
ray.cancel(endless)
seen = 0
try:
    for ref in endless:
        ray.get(ref)
        seen += 1
    outcome = "ended without an error"
except ray.exceptions.TaskCancelledError:
    outcome = "TaskCancelledError"
record("cancel", [outcome, seen < 500])


async def consume():
    return [await ref for ref in [r async for r in gen.remote(3)]]

record("async_for", asyncio.run(consume()))
