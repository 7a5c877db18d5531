"""Job of tests/test_reduce.py::test_semantics_and_errors."""
import time
import numpy as np
import hpcray as ray
from hpcray.exceptions import TaskError
from jobkit import check

@ray.remote
def slow(i, delay):
    time.sleep(delay)
    return np.full(400_000, float(i))

@ray.remote
def number(i):
    return i

@ray.remote
def fails(i):
    time.sleep(0.2)
    raise ValueError(f"input {i} broke")

@check
def still_computing():
    start = time.perf_counter()
    refs = [slow.remote(i, 0.5) for i in range(6)]
    ref = ray.reduce(refs)
    submitted = time.perf_counter() - start
    value = ray.get(ref)
    return [submitted < 0.3, float(value[0]), value.shape[0], float(value[-1])]

@check
def python_ints():
    refs = [ray.put(i) for i in range(1, 7)] + [number.remote(2 ** 70)]
    total = ray.get(ray.reduce(refs))
    return [total == 21 + 2 ** 70, type(total).__name__, ray.get(ray.reduce(refs[:6], "prod")),
            ray.get(ray.reduce(refs, "min")), ray.get(ray.reduce(refs, "max")) == 2 ** 70]

@check
def single_ref_is_a_copy():
    ref = slow.remote(4, 0.0)
    out = ray.reduce([ref])
    return [out != ref, float(ray.get(out)[0]), float(ray.get(ray.reduce(ref))[0])]

@check
def same_ref_twice():
    ref = slow.remote(3, 0.0)
    return float(ray.get(ray.reduce([ref, ref, ref], "sum"))[0])

@check
def failed_input():
    refs = [slow.remote(i, 0.0) for i in range(5)] + [fails.remote(9)]
    return ray.get(ray.reduce(refs))

@check
def failed_input_is_task_error():
    try:
        ray.get(ray.reduce([fails.remote(1), slow.remote(1, 0.0)]))
    except TaskError as error:
        return isinstance(error, ValueError)

@check
def different_lengths():
    return ray.get(ray.reduce([slow.remote(1, 0.0), ray.put(np.ones(300_000))]))

@check
def broadcasting():
    refs = [ray.put(np.ones(3)), ray.put(np.arange(6.0).reshape(2, 3)), ray.put(2.0)]
    return ray.get(ray.reduce(refs)).tolist()

@check
def empty():
    return ray.reduce([])

@check
def not_refs():
    return ray.reduce([1, 2])

@check
def unknown_op():
    return ray.reduce([ray.put(1)], "avg")
