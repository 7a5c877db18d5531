"""Job of tests/test_tasks.py::test_infeasible_requests_wait_with_a_warning: as in Ray, a
task asking for more than any rank has stays pending (a warning names it), holds up nothing
else, and can be cancelled."""
import hpcray as ray
from jobkit import record


@ray.remote
def f():
    return "ran"


@ray.remote(resources={"unobtainium": 2})
def g():
    return 1


def attempt(ref):
    try:
        return {"where": "succeeded", "value": ray.get(ref, timeout=1)}
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref)
        try:
            ray.get(ref, timeout=10)
        except ray.exceptions.TaskCancelledError:
            return {"where": "pending, then cancelled"}
    except Exception as e:
        return {"where": "get", "type": type(e).__name__, "msg": str(e)}


record("cpus", attempt(f.options(num_cpus=1000).remote()))
record("custom", attempt(f.options(resources={"unobtainium": 1}).remote()))
waiting = g.remote()                    # left pending: the job still ends at the script's end
record("custom_decorator", attempt(g.remote()))
record("after", ray.get(f.remote()))
