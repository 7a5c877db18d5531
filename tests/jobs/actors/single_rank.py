"""Job of tests/test_actors.py::test_actors_on_a_single_rank."""
import asyncio
import hpcray as ray
from jobkit import record

@ray.remote
class C:
    def __init__(self):
        self.n = 0
    def incr(self):
        self.n += 1
        return self.n

@ray.remote
class Nap:
    async def nap(self):
        await asyncio.sleep(0.1)
        return 1

c = C.remote()
record("single_rank", ray.get([c.incr.remote() for _ in range(100)])[-1])
record("async_single_rank", sum(ray.get([Nap.remote().nap.remote() for _ in range(20)])))
