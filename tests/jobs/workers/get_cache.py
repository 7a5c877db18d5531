"""A task that gets a stored object again reads it from its worker process's get cache (no
request to the rank), and the rank's pins on it go back once the task is over, whatever way
it ends: the object is freed when its last ref goes, as without the cache."""
import time

import numpy as np

import hpcray as ray
from jobkit import check, on_rank, record, runtime

MB = 1 << 20


def store_in_use():
    return runtime().store.in_use()


def worker_pins():
    """Pins the executing ranks hold for their worker processes' views, in all."""
    @ray.remote
    def pins():
        return on_rank(lambda rt: sum(sum(worker.pins.values())
                                      for worker in rt.workers.workers))
    return sum(ray.get([pins.remote() for _ in range(4)]))


@ray.remote
def read_again(refs, fail=False):
    link = runtime()
    first = ray.get(refs[0])
    cached = refs[0].id in link.cached
    second = ray.get(refs[0])
    both = ray.get([refs[0], refs[0]])
    same = all(np.shares_memory(first, other) for other in (second, *both))
    if fail:
        raise ValueError("failed after reading")
    return (cached, same, first.flags.writeable, second.flags.writeable,
            int(second[::4096].sum()), len(link.cached))


@ray.remote
class Reader:
    def read(self, refs):
        first = ray.get(refs[0])
        second = ray.get(refs[0])
        return refs[0].id in runtime().cached, int(first[-1] + second[0])


base = store_in_use()
ref = ray.put(np.arange(8 * MB // 8, dtype=np.int64))
expected = int(np.arange(8 * MB // 8, dtype=np.int64)[::4096].sum())


@check
def task_reads_from_the_cache():
    cached, same, writeable, writeable_again, total, entries = ray.get(
        read_again.remote([ref]), timeout=60)
    return [cached, same, writeable, writeable_again, total == expected, entries]


@check
def a_new_task_starts_with_no_cache():
    return ray.get(read_again.remote([ref]), timeout=60)[5]


@check
def failing_task():
    try:
        ray.get(read_again.remote([ref], fail=True), timeout=60)
    except ValueError as error:
        return "failed after reading" in str(error)


reader = Reader.remote()


@check
def actor_call_reads_from_the_cache():
    return ray.get(reader.read.remote([ref]), timeout=60)


record("pins_left", worker_pins())
del ref
deadline = time.monotonic() + 20
while store_in_use() > base and time.monotonic() < deadline:
    time.sleep(0.05)
record("freed", store_in_use() - base)
