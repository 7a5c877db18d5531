"""Job of tests/test_launch.py::test_sys_exit_code_propagates."""
import sys
import hpcray as ray

@ray.remote
def f():
    return 1

assert ray.get(f.remote()) == 1
print("BEFORE-EXIT", flush=True)
sys.exit(3)
