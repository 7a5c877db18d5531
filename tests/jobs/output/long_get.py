"""Job of tests/test_output.py: a get of several refs that lasts ~5 s, then a wait for 2 of
several; the driver shows a progress line on stderr (unless HPCRAY_PROGRESS=0)."""
import time

import hpcray


@hpcray.remote
def nap(seconds):
    time.sleep(seconds)
    return seconds


hpcray.init()
assert hpcray.get([nap.remote(0), nap.remote(4.5), nap.remote(4.5)]) == [0, 4.5, 4.5]
print("get done", flush=True)
ready, _ = hpcray.wait([nap.remote(0.5), nap.remote(3.5), nap.remote(30)], num_returns=2)
print("wait done", len(ready), flush=True)
assert hpcray.get(nap.remote(0)) == 0                # one ref: never a progress line
