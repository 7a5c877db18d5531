"""Job of tests/test_lifetimes.py::test_refs_passed_between_ranks_are_counted."""
import time
import numpy as np
import hpcray as ray
from jobkit import record, settle, runtime
rt = runtime()

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

# 2. an actor keeps a ref it got inside its arguments: its rank borrows it
@ray.remote
class Keeper:
    def keep(self, box):
        self.kept = box[0]
        return True

    def read(self):
        return float(ray.get(self.kept).sum())

    def drop(self):
        del self.kept
        return True

ref = ray.put(np.full(MB8, 2.0))
WORKERS = ray.get_runtime_context().get_world_size() - 1   # one keeper per worker rank
keepers = [Keeper.remote() for _ in range(WORKERS)]
ray.get([k.keep.remote([ref]) for k in keepers])
del ref
record("borrowed_alive", in_use() > base)
record("read_by_borrower", ray.get(keepers[0].read.remote()))
ray.get([k.drop.remote() for k in keepers])
record("borrow_released", in_use() - base)

# 3. a task returns a ref it owns, inside a list: the driver borrows it
@ray.remote
def make():
    return [ray.put(np.full(MB8, 3.0))]

out = ray.get(make.remote())
record("returned_ref", float(ray.get(out[0]).sum()))
del out
record("returned_freed", in_use() - base)
