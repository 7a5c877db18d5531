"""Job of tests/test_embedded.py::test_embedded_sys_exit_code."""
import sys
import hpcray as ray
ray.init(num_cpus=2)

@ray.remote
def f():
    return 1
ray.get(f.remote())
sys.exit(3)
