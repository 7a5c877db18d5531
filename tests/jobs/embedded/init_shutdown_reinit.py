"""Job of tests/test_embedded.py::test_embedded_init_tasks_shutdown_reinit."""
import os, time
import psutil
import hpcray as ray
from jobkit import check, record

print("TOP-LEVEL-OF-SCRIPT", flush=True)   # must print once: workers never re-run the script

@ray.remote
def where(t):
    time.sleep(t)
    return ray.get_runtime_context().get_rank()

@ray.remote
def add(a, b):
    return a + b

def python_children():
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.name().startswith("python") and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.Error:
            pass
    return out

record("before", ray.is_initialized())

@check
def first_session():
    ray.init(num_cpus=2)
    ranks = sorted(set(ray.get([where.remote(0.3) for _ in range(8)])))
    return {"init": ray.is_initialized(), "ranks": ranks,
            "driver_rank": ray.get_runtime_context().get_rank(),
            "cpu": ray.cluster_resources().get("CPU"),
            "dag": ray.get(add.remote(add.remote(1, 2), ray.put(4))),
            "workers": len(python_children())}

@check
def double_init_raises():
    ray.init(num_cpus=2)

@check
def ignore_reinit():
    ray.init(num_cpus=2, ignore_reinit_error=True)
    return ray.get(add.remote(1, 1))

@check
def after_shutdown():
    ray.shutdown()
    deadline = time.time() + 10
    while python_children() and time.time() < deadline:
        time.sleep(0.1)
    return {"init": ray.is_initialized(), "children": python_children()}

@check
def second_session():
    ray.init(num_cpus=2)
    return {"init": ray.is_initialized(),
            "ranks": sorted(set(ray.get([where.remote(0.3) for _ in range(8)]))),
            "value": ray.get(add.remote(20, 22))}

ray.shutdown()
record("final", ray.is_initialized())
