"""Short tasks are streamed to busy worker processes. A long task among them delays only the
few tasks sent ahead behind it in its process (``TASKS_AHEAD``): not the results of tasks
that already ran (the rank passes them on at once, though tasks are still ready there),
nor the tasks the rank still holds (its other processes run them: only the task a process
runs counts against the rank's CPUs; or, when it has no other, it gives them back to the
head after a few milliseconds, which places them on other ranks: ``GIVE_BACK``)."""
import time

import hpcray as ray
from hpcray.workers.pool import TASKS_AHEAD
from jobkit import record

LONG = 50


@ray.remote
def short_or_long(x):
    if x == LONG:
        time.sleep(8)
    return x


ray.get([short_or_long.remote(0) for _ in range(300)])     # processes warm, tasks short
refs = [short_or_long.remote(i) for i in range(80)]
ready, pending = ray.wait(refs, num_returns=len(refs), timeout=4)
late = sorted(refs.index(ref) for ref in pending)
record("long_is_late", LONG in late)
record("late_besides_it", len(late) - 1)
record("tasks_ahead", TASKS_AHEAD)
record("values", ray.get(refs, timeout=60) == list(range(80)))
