"""Job of tests/test_scheduling.py::test_mpiexec_without_dash_m_joins_the_job."""
import hpcray as ray
ray.init()
@ray.remote
def rank():
    return ray.get_runtime_context().get_rank()
print('RANKS', sorted(set(ray.get([rank.remote() for _ in range(20)]))))
