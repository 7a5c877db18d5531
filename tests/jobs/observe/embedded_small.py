"""A small job for the embedded default and for a job directory that cannot be made
(tests/test_observe.py)."""
import hpcray as ray
from jobkit import record

ray.init(num_cpus=2)


@ray.remote
def double(x):
    return 2 * x


record("tasks", len(ray.get([double.remote(i) for i in range(10)])))
ray.shutdown()
