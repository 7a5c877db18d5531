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
# more than the 64 MB store holds, all kept: the oldest spill to disk (a spill directory)
kept = [ray.put(np.full(2_500_000, float(i))) for i in range(4)]
assert [float(ray.get(ref)[0]) for ref in kept] == [0.0, 1.0, 2.0, 3.0]
if sys.argv[1] == "fail":
    slow.remote()
    time.sleep(0.5)
    raise RuntimeError("the script fails while a task runs")
time.sleep(0.3)                      # (the harness samples the job's files now and then)
print("DONE", sys.argv[1])
