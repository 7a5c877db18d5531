"""Job of tests/test_store.py::test_no_files_left_after_a_job."""
import sys, time
import numpy as np
import hpcray as ray

@ray.remote
def make(n):
    return np.full(n, 1.0)

@ray.remote
def slow():
    time.sleep(60)

refs = [make.remote(1_000_000) for _ in range(4)]
ray.get(refs)
ray.put(np.ones(2_000_000))
if sys.argv[1] == "fail":
    slow.remote()
    time.sleep(0.5)
    raise RuntimeError("the script fails while a task runs")
print("DONE", sys.argv[1])
