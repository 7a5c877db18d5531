"""Job of tests/test_resources.py::test_resources_from_slurm_variables."""
import os
import hpcray as ray
from jobkit import record

@ray.remote(num_gpus=1)
def device():
    return [ray.get_runtime_context().get_rank(), os.environ["CUDA_VISIBLE_DEVICES"]]

record("resources", ray.cluster_resources())
record("devices", sorted({tuple(map(str, r)) for r in ray.get([device.remote() for _ in range(8)])}))
