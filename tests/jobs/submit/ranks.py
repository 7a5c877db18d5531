"""Job of tests/test_submit.py (test_submit_runs_on_three_ranks, test_submit_rejected_by_sbatch)."""
import sys
import hpcray as ray

@ray.remote
def rank():
    return ray.get_runtime_context().get_rank()

print("ARGV", sys.argv[1:])
print("RANKS", sorted(set(ray.get([rank.remote() for _ in range(30)]))))
sys.exit(int(sys.argv[1]))
