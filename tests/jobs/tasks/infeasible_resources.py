"""Job of tests/test_tasks.py::test_infeasible_resources_fail_promptly."""
import hpcray as ray
from jobkit import record

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
