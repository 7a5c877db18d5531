"""Job of tests/test_resources.py:
    test_sigterm_runs_hooks_and_ends_the_job
    test_scancel_signal_term_under_slurm
"""
import sys, time
import hpcray as ray

@ray.remote
class Trainer:
    def __init__(self):
        self.step = 0
    def train(self):
        self.step += 1
        time.sleep(0.01)
        return self.step
    def checkpoint(self, path):
        with open(path, "w") as f:
            f.write(f"step {self.step}\n")
        return self.step

trainer = Trainer.remote()

@ray.register_shutdown_hook
def save():
    print("HOOK checkpoint at step", ray.get(trainer.checkpoint.remote(sys.argv[1])), flush=True)

ray.get(trainer.train.remote())
print("TRAINING", flush=True)
while True:
    try:
        ray.get(trainer.train.remote())
    except Exception:           # must not swallow the stop
        pass
