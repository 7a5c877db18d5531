"""Job of tests/test_util.py::test_queue."""
import asyncio, pickle, queue as stdq, resource, time
import hpcray as ray
from hpcray.exceptions import ActorDiedError
from hpcray.util.queue import Queue, Empty, Full
from jobkit import check

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
