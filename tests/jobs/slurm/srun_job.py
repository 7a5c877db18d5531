"""Job of tests/test_slurm.py::test_srun_launch."""
import sys
import hpcray as ray

@ray.remote
def rank():
    return ray.get_runtime_context().get_rank()

print("ARGV", sys.argv[1:])
print("RANKS", sorted(set(ray.get([rank.remote() for _ in range(30)]))))
if sys.argv[1] == "fail":
    raise RuntimeError("boom on rank 0")
sys.exit(int(sys.argv[1]))
