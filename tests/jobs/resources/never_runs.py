"""Job of tests/test_resources.py::test_bad_custom_resources_stop_the_job_clearly."""
print('never')
