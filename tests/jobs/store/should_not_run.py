"""Job of tests/test_store.py::test_store_larger_than_dev_shm_is_a_clear_error."""
print('should not run')
