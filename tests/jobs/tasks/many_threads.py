"""Job of tests/test_tasks.py::test_api_from_many_threads."""
import numpy as np
from concurrent.futures import ThreadPoolExecutor
import hpcray as ray
from jobkit import record

@ray.remote
def double(x):
    return x * 2

def work(i):
    out = []
    for j in range(100):
        out.append(ray.get(double.remote(i * 1000 + j)))
        if j % 25 == 0:
            ref = ray.put(np.full(100_000, float(i)))
            assert float(ray.get(ref)[0]) == float(i)
    return out

with ThreadPoolExecutor(6) as pool:
    results = list(pool.map(work, range(6)))
record("ok", all(r == [2 * (i * 1000 + j) for j in range(100)]
                 for i, r in enumerate(results)))
