"""Job of tests/test_tasks.py::test_init_declares_job_totals: init(num_cpus=, num_gpus=)
declares the job's totals, as Ray's does, dealt to the ranks in whole units."""
import hpcray as ray
from jobkit import record

ray.init(num_cpus=5, num_gpus=1)
record("totals", {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")})


@ray.remote(num_gpus=1)
class OnTheGpu:
    def where(self):
        return ray.get_runtime_context().get_rank(), ray.get_gpu_ids()


@ray.remote(num_cpus=2)
def two_cpus():
    return ray.get_runtime_context().get_rank()


record("gpu_actor_rank", ray.get(OnTheGpu.remote().where.remote(), timeout=30)[0])
record("two_cpu_ranks", sorted(set(ray.get([two_cpus.remote() for _ in range(4)], timeout=30))))
