"""Job of tests/test_output.py: 100 tasks print the same line but for a number; the driver
folds them as Ray's log deduplication does. Runs on Ray too (``RAY_MODULE=ray``)."""
import importlib
import os

ray = importlib.import_module(os.environ.get("RAY_MODULE", "hpcray"))   # (or Ray itself)
ray.init(num_cpus=2) if ray.__name__ == "ray" else ray.init()


@ray.remote
def same(i):
    print(f"hello from task {i}")
    return i


assert sum(ray.get([same.remote(i) for i in range(100)])) == 4950
print("driver done", flush=True)
