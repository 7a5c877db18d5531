"""Job of tests/test_tasks.py::test_nested_fib."""
import sys
import hpcray as ray
from jobkit import record

@ray.remote
def fib(n):
    if n < 2:
        return n
    return sum(ray.get([fib.remote(n - 1), fib.remote(n - 2)]))

record("fib10", ray.get(fib.remote(10)))
record("fib15", ray.get(fib.remote(int(sys.argv[1]))))
