"""Job of tests/test_launch.py::test_sys_exit_without_tasks."""
import sys
import hpcray
sys.exit(5)
