"""Job of tests/test_reduce.py::test_every_op_against_numpy."""
import operator, time
import numpy as np
import hpcray as ray
from jobkit import record, runtime
rt = runtime()

N = 300_000                                   # 2.4 MB per array: stored, not inline

@ray.remote
def make(i):
    time.sleep(0.05)                          # long enough to spread over every rank
    return np.random.default_rng(i).integers(1, 4, N).astype(np.float64)

refs = [make.remote(i) for i in range(7)]     # uneven: 7 inputs
ray.wait(refs, num_returns=len(refs))
with rt.lock:
    record("input_nodes", len({rt.submitter.locate(ref.id) for ref in refs}))
arrays = ray.get(refs)
ops = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum,
       "np.maximum": np.maximum, "operator.add": np.add, "lambda": np.minimum}
given = {"np.maximum": np.maximum, "operator.add": operator.add,
         "lambda": lambda a, b: np.minimum(a, b)}
for name, ufunc in ops.items():
    want = ufunc.reduce(np.stack(arrays), axis=0)
    for count in (1, 2, 7):
        got = ray.get(ray.reduce(refs[:count], given.get(name, name)))
        want = ufunc.reduce(np.stack(arrays[:count]), axis=0)
        record(f"{name}_{count}", bool(got.shape == want.shape and np.array_equal(got, want)))
# the driver's own puts (on its node) mixed with task results
mixed = refs + [ray.put(np.full(N, 2.0)), ray.put(np.full(N, 3.0))]
record("mixed", bool(np.array_equal(ray.get(ray.reduce(mixed)), sum(arrays) + 5.0)))
