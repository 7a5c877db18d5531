"""Job of tests/test_scheduling.py::test_the_scheduling_examples_of_rays_docs, run as
`python script.py` (the driver is a node of its own for MPI, on the same host as its
workers): the strategies of Ray's scheduling page, with the import changed."""
import importlib
import os

ray = importlib.import_module(os.environ.get("RAY_MODULE", "hpcray"))   # (or Ray itself)
NodeAffinitySchedulingStrategy = importlib.import_module(
    ray.__name__ + ".util.scheduling_strategies").NodeAffinitySchedulingStrategy
ray.init()
@ray.remote
def default_function(): return 1
print(ray.get(default_function.options(scheduling_strategy="DEFAULT").remote()))
@ray.remote(scheduling_strategy="SPREAD")
def spread_function(): return 2
print(sum(ray.get([spread_function.remote() for _ in range(10)])))
@ray.remote
def node_affinity_func(): return ray.get_runtime_context().get_node_id()
print(ray.get(node_affinity_func.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)).remote()) == ray.get_runtime_context().get_node_id())
print(ray.get(node_affinity_func.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)).remote()) is not None)
@ray.remote(num_cpus=1)
class SpreadActor:
    def node(self):
        return ray.get_runtime_context().get_node_id()


actors = [SpreadActor.options(scheduling_strategy="SPREAD").remote() for _ in range(2)]
print(len(ray.get([a.node.remote() for a in actors])), len(ray.nodes()))
