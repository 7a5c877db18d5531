"""Job of tests/test_resources.py::test_declared_gpus_are_pinned_one_per_worker."""
import os
import hpcray as ray
from jobkit import check, record

record("driver_sees", os.environ.get("CUDA_VISIBLE_DEVICES"))
record("resources", ray.cluster_resources())

@ray.remote(num_gpus=1)
def one_gpu():
    return [ray.get_runtime_context().get_rank(), os.environ["CUDA_VISIBLE_DEVICES"],
            ray.get_gpu_ids()]

@ray.remote(num_gpus=0.5)
def half_gpu():
    return os.environ["CUDA_VISIBLE_DEVICES"]

@ray.remote
def anywhere():
    return [ray.get_runtime_context().get_rank(), os.environ["CUDA_VISIBLE_DEVICES"],
            ray.get_gpu_ids()]

@ray.remote(num_gpus=1)
class GpuActor:
    def device(self):
        return os.environ["CUDA_VISIBLE_DEVICES"]

@ray.remote(resources={"ssd": 1})
def needs_ssd():
    return ray.get_runtime_context().get_rank()

record("one_gpu", sorted({tuple(map(str, r)) for r in ray.get([one_gpu.remote() for _ in range(12)])}))
record("half_gpu", sorted(set(ray.get([half_gpu.remote() for _ in range(12)]))))
record("anywhere", sorted({tuple(map(str, r)) for r in ray.get([anywhere.remote() for _ in range(30)])}))
record("actors", sorted(ray.get([GpuActor.remote().device.remote() for _ in range(2)])))
record("ssd", sorted(set(ray.get([needs_ssd.remote() for _ in range(6)]))))

def infeasible(fn):
    """An infeasible task waits, as in Ray (with a warning), and holds up no other task;
    returns [ready now, ready after other tasks ran, the error once cancelled]."""
    ref = fn.remote()
    ready, _ = ray.wait([ref], timeout=0.5)
    others = ray.get([anywhere.remote() for _ in range(6)])   # they run meanwhile
    still, _ = ray.wait([ref], timeout=0.1)
    ray.cancel(ref)
    try:
        ray.get(ref, timeout=10)
    except Exception as error:
        return [len(ready), len(still), len(others), type(error).__name__]

record("too_many_gpus", infeasible(one_gpu.options(num_gpus=2)))
record("unknown_resource", infeasible(needs_ssd.options(resources={"tape": 1})))
