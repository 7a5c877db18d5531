"""Job of tests/test_embedded.py::test_embedded_uncaught_exception_while_task_sleeps."""
import time
import hpcray as ray
ray.init(num_cpus=2)

@ray.remote
def sleeper():
    time.sleep(60)

refs = [sleeper.remote() for _ in range(2)]
time.sleep(1.0)
raise RuntimeError("embedded-driver-crash")
