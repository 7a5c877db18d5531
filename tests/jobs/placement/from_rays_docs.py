"""Job of tests/test_placement_groups.py::test_the_example_of_rays_docs: the placement
group walk-through of Ray's documentation, with the import changed (init declares 2 CPUs and
2 GPUs for the job, after which the head starts a new session)."""
import importlib
import os
import time

ray = importlib.import_module(os.environ.get("RAY_MODULE", "hpcray"))   # (or Ray itself)
groups = importlib.import_module(ray.__name__ + ".util.placement_group")
strategies = importlib.import_module(ray.__name__ + ".util.scheduling_strategies")
placement_group, placement_group_table = groups.placement_group, groups.placement_group_table
remove_placement_group = groups.remove_placement_group
PlacementGroupSchedulingStrategy = strategies.PlacementGroupSchedulingStrategy
ray.init(num_cpus=2, num_gpus=2)
pg = placement_group([{"CPU": 1, "GPU": 1}])
ray.get(pg.ready(), timeout=10)
print(placement_group_table(pg)["state"])
ready, unready = ray.wait([pg.ready()], timeout=5)
print(len(ready))
pending_pg = placement_group([{"CPU": 1}, {"GPU": 2}])
try:
    ray.get(pending_pg.ready(), timeout=5)
except ray.exceptions.GetTimeoutError:
    print("The placement group cannot be created because it requires 2 GPUs")
@ray.remote(num_cpus=0, num_gpus=1)
class Actor:
    def __init__(self): pass
    def ready(self): pass
actor = Actor.options(scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=pg)).remote()
ray.get(actor.ready.remote(), timeout=10)
print("actor ready")
remove_placement_group(pg)
time.sleep(1)
print(placement_group_table(pg)["state"])
