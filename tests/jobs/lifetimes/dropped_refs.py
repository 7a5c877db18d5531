"""Job of tests/test_lifetimes.py::test_dropped_refs_are_freed."""
import hpcray as ray
from jobkit import record, runtime

@ray.remote
def f(x):
    return x

@ray.remote
def add(a, b):
    return a + b

for _ in range(10):
    ray.get([f.remote(i) for i in range(500)])
    assert ray.get(add.remote(f.remote(1), ray.put(2))) == 3
kept = ray.put("kept")
nested = ray.put([kept])                 # a ref pickled inside another object: kept for good
rt = runtime()
with rt.lock:
    rt.progress.turn()
record("owned_after", len(rt.ownership.objects))
record("bookkeeping", [len(rt.ownership.pending), len(rt.ownership.tasks), len(rt.ownership.pins), len(rt.refs.local)])
record("kept", ray.get(kept))
record("nested", ray.get(ray.get(nested)[0]))
