"""Job of tests/test_store.py::test_freeing_churn_spilling_and_full_store."""
import time
import numpy as np
import hpcray as ray
from jobkit import record, settle, runtime
rt = runtime()

base = rt.store.in_use()
view = ray.get(ray.put(np.ones(1_000_000)))        # a view keeps its object alive...
settle()
record("view_kept", rt.store.in_use() > base)
record("view_value", float(view.sum()))
del view                                            # ...until it goes
settle()
record("after_view", rt.store.in_use() - base)

@ray.remote
def make(i):
    return np.full(500_000, float(i))

@ray.remote
def total(x):
    return float(x.sum())

refs = [make.remote(i) for i in range(8)]
record("sums", ray.get([total.remote(r) for r in refs]))
del refs
settle()
record("after_results", rt.store.in_use() - base)

# a store of 64 MB takes 10 times its size over time
for i in range(20):
    ref = ray.put(np.full(4_000_000, float(i)))     # 32 MB each
    assert float(ray.get(ref)[0]) == float(i)
    del ref
record("churn", "ok")

held = [ray.put(np.full(3_000_000, float(i))) for i in range(10)]   # 240 MB in 64 MB
record("spilled", rt.store.spilled() > 0)
record("restored", [float(ray.get(r)[0]) for r in held])          # back from disk, in order
try:
    ray.put(np.zeros(10_000_000))                                  # 80 MB can never fit
    record("too_big", "no error")
except ray.exceptions.ObjectStoreFullError as error:
    record("too_big", str(error))
views = [ray.get(held[0]), ray.get(held[1])]                       # 48 MB pinned by views
try:
    extra = [ray.put(np.zeros(3_000_000)) for _ in range(2)]       # the rest cannot make room
    record("pinned_full", "no error")
except ray.exceptions.ObjectStoreFullError as error:
    record("pinned_full", str(error))
record("views_intact", [float(v[0]) for v in views])
del held, views
settle()
record("after_full", rt.store.in_use() - base)
record("spill_files_left", rt.store.spilled())
record("still_works", float(ray.get(ray.put(np.ones(2_000_000))).sum()))
