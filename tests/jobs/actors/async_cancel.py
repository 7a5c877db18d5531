"""Job of tests/test_actors.py::test_cancelling_a_running_async_call: as in Ray, cancel of a
running async actor call cancels its coroutine (TaskCancelledError, the actor goes on), and
a job that ends with async calls still pending ends without asyncio's noise."""
import asyncio
import time

import hpcray as ray
from jobkit import record


@ray.remote
class Waiter:
    def __init__(self):
        self.seen = []

    async def long(self):
        try:
            await asyncio.sleep(60)
            return "finished"
        except asyncio.CancelledError:
            self.seen.append("CancelledError")
            raise

    async def seen_so_far(self):
        return self.seen


waiter = Waiter.remote()
ref = waiter.long.remote()
time.sleep(0.5)                                # (it runs)
started = time.monotonic()
ray.cancel(ref)
try:
    ray.get(ref, timeout=30)
    outcome = "returned"
except ray.exceptions.TaskCancelledError:
    outcome = "TaskCancelledError"
record("cancelled", [outcome, time.monotonic() - started < 10])
record("coroutine_saw", ray.get(waiter.seen_so_far.remote()))
left_pending = Waiter.remote().long.remote()   # still running when the job ends
time.sleep(0.3)
