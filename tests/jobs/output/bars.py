"""Job of tests/test_output.py: progress bars (``hpcray.experimental.tqdm_ray``) in two
tasks, in an actor and on the driver itself; argument: seconds each task's bar runs."""
import sys
import time

import hpcray
from hpcray.experimental.tqdm_ray import tqdm

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0


@hpcray.remote
def work(index, steps=50):
    for _ in tqdm(range(steps), desc=f"work {index}", flush_interval_s=0.2):
        time.sleep(seconds / steps)
    return index


@hpcray.remote
class Trainer:
    def train(self, epochs):
        with tqdm(total=epochs, desc="epochs", unit="epoch") as bar:
            for _ in range(epochs):
                bar.update(1)
        return epochs


hpcray.init()
trainer = Trainer.remote()
assert hpcray.get([work.remote(0), work.remote(1), trainer.train.remote(7)]) == [0, 1, 7]
driver_bar = tqdm(total=3, desc="driver")
for _ in range(3):
    driver_bar.update(1)
driver_bar.close()
print("driver done", flush=True)
