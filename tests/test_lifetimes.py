"""Owners free what nobody references any more: results, puts, and task arguments."""
import pytest

LIFETIMES = """
from hpcray.core import current
import hpcray as ray

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
rt = current.runtime()
with rt.lock:
    rt.progress.turn()
record("owned_after", len(rt.ownership.objects))
record("bookkeeping", [len(rt.ownership.pending), len(rt.ownership.tasks), len(rt.ownership.pins), len(rt.refs.local)])
record("kept", ray.get(kept))
record("nested", ray.get(ray.get(nested)[0]))
"""


@pytest.mark.parametrize("n", [1, 3])
def test_dropped_refs_are_freed(run_job, n):
    res = run_job(LIFETIMES, n=n, timeout=90)
    res.assert_ok()
    assert res.value("owned_after") == 2          # only `kept` and `nested` remain
    assert res.value("bookkeeping") == [0, 0, 0, 2]
    assert res.value("kept") == "kept"
    assert res.value("nested") == "kept"


BORROWING = """
import time
import numpy as np
import hpcray as ray
from hpcray.core import current
rt = current.runtime()

def in_use():
    settle()
    return rt.store.in_use()

base = in_use()
MB8 = 1_000_000

# 1. a ref inside a put object lives as long as that object
inner = ray.put(np.full(MB8, 1.0))
box = ray.put([inner])
del inner
record("held_by_box", in_use() > base)
record("through_box", float(ray.get(ray.get(box)[0]).sum()))
del box
record("box_freed", in_use() - base)

# 2. a task keeps a ref it got inside its arguments: it borrows it
@ray.remote
def keep(box):
    import builtins                       # somewhere that outlives the task, on its rank
    builtins.kept_by_test = box[0]
    return True

@ray.remote
def read():
    import builtins
    return float(ray.get(builtins.kept_by_test).sum())

@ray.remote
def drop():
    import builtins
    del builtins.kept_by_test
    return True

ref = ray.put(np.full(MB8, 2.0))
WORKERS = ray.get_runtime_context().get_world_size() - 1   # one keep/drop per worker rank
ray.get([keep.remote([ref]) for _ in range(WORKERS)])
del ref
record("borrowed_alive", in_use() > base)
record("read_by_borrower", ray.get(read.remote()))
ray.get([drop.remote() for _ in range(WORKERS)])
record("borrow_released", in_use() - base)

# 3. a task returns a ref it owns, inside a list: the driver borrows it
@ray.remote
def make():
    return [ray.put(np.full(MB8, 3.0))]

out = ray.get(make.remote())
record("returned_ref", float(ray.get(out[0]).sum()))
del out
record("returned_freed", in_use() - base)
"""


def test_refs_passed_between_ranks_are_counted(run_job):
    # one node, one worker: every object lives in the store the driver can see
    res = run_job(BORROWING, n=2, timeout=120)
    res.assert_ok()
    assert res.value("held_by_box") is True
    assert res.value("through_box") == 1_000_000.0
    assert res.value("box_freed") == 0
    assert res.value("borrowed_alive") is True
    assert res.value("read_by_borrower") == 2_000_000.0
    assert res.value("borrow_released") == 0
    assert res.value("returned_ref") == 3_000_000.0
    assert res.value("returned_freed") == 0
