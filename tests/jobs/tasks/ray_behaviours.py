"""Job of tests/test_tasks.py::test_rays_behaviours: Ray Core's smaller APIs and behaviours,
written as Ray's documentation uses them. It runs on hpcray, or on Ray itself
(``RAY_MODULE=ray``), and the test compares what both record."""
import importlib
import os
import time

import numpy as np

from jobkit import record

ray = importlib.import_module(os.environ.get("RAY_MODULE", "hpcray"))
cloudpickle = importlib.import_module(ray.__name__ + ".cloudpickle")
internal_api = importlib.import_module(ray.__name__ + "._private.internal_api")
ray.init()

# Out-of-band serialization of a ref (Ray's serialization guide), then an explicit free.
FILE = f"/tmp/hpcray-oob-{os.getpid()}.pickle"
obj_ref = ray.put({"hello": "world"})
with open(FILE, "wb+") as f:
    cloudpickle.dump(obj_ref, f)
del obj_ref
with open(FILE, "rb") as f:
    new_obj_ref = cloudpickle.load(f)
os.unlink(FILE)
record("out_of_band", ray.get(new_obj_ref) == {"hello": "world"})
if hasattr(internal_api, "free"):             # (Ray's docs use it; Ray 2.60 dropped it)
    internal_api.free(new_obj_ref)
    try:
        ray.get(new_obj_ref, timeout=10)
        record("free", "still there")
    except ray.exceptions.ObjectFreedError:
        record("free", "ObjectFreedError")

ref = ray.put(5)
record("ref_from_binary", [ray.get(ray.ObjectRef(ref.binary())), ray.ObjectRef(ref.binary()) == ref])
try:                                           # (Ray 2.60 raises NotImplementedError)
    record("from_hex_and_binary", [ray.get(ray.ObjectRef.from_hex(ref.hex())),
                                   ray.get(ray.ObjectRef.from_binary(ref.binary()))])
except NotImplementedError:
    pass


@ray.remote(num_cpus=0.5)
def context():
    c = ray.get_runtime_context()
    return [c.get_assigned_resources(), c.get_accelerator_ids()["GPU"], c.is_canceled(),
            c.get_task_id() is not None, c.get_actor_id()]


record("task_context", ray.get(context.remote()))


@ray.remote(num_cpus=1)
class Slow:
    def __init__(self):
        time.sleep(0.3)

    def actor_id(self):
        return ray.get_runtime_context().get_actor_id() is not None

    def assigned(self):
        return ray.get_runtime_context().get_assigned_resources()


slow = Slow.remote()
record("ray_ready", [ray.get(slow.__ray_ready__.remote()), ray.get(slow.actor_id.remote())])
record("actor_assigned", ray.get(slow.assigned.remote()))


@ray.remote
def writeable(x, nested):
    return [x.flags.writeable, nested[0].flags.writeable]


@ray.remote
def make(n):
    return np.zeros(n)


small, large = np.zeros(10), np.zeros(1 << 20)
record("read_only", [ray.get(writeable.remote(small, [small])),
                     ray.get(writeable.remote(large, [large])),
                     ray.get(ray.put(small)).flags.writeable,
                     ray.get(ray.put(large)).flags.writeable,
                     ray.get(make.remote(10)).flags.writeable,
                     ray.get(make.remote(1 << 20)).flags.writeable])


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickle")


@ray.remote
def fails():
    raise Unpicklable("the message")


try:
    ray.get(fails.remote())
except Exception as error:
    record("unpicklable_exception", [isinstance(error, ray.exceptions.RayTaskError),
                                     isinstance(error, Unpicklable),
                                     "the message" in str(error),
                                     "isn't serializable" in str(error.cause),
                                     "the message" in str(error.cause)])
