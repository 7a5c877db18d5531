"""Job of tests/test_launch.py::test_argv_main_and_exit_zero."""
import os, sys
import hpcray as ray
from jobkit import record

@ray.remote
def inc(x):
    return x + 1

record("argv", sys.argv)
record("name", __name__)
record("cwd_script_exists", os.path.exists(sys.argv[0]))
record("task", ray.get(inc.remote(41)))
print("END-OF-SCRIPT")
