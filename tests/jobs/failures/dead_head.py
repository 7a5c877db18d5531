"""The head (rank 0, the driver) is SIGKILLed while tasks run: the job ends within seconds,
every rank says why, nothing hangs or is left behind."""
import os
import signal
import time

import hpcray as ray


@ray.remote
def slow():
    time.sleep(30)


refs = [slow.remote() for _ in range(4)]
time.sleep(0.5)
print("the head dies now", time.time(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
