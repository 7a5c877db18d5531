# Defect 3: tasks submitted and never waited on. The one whose argument is a put ref never ran
# (the one without ran, after the script had ended). A submitted task always runs unless the
# job ends first; and when the job ends first, the job says so: no task is dropped silently.
# argv: a folder for the tasks' marker files; "wait" (poll the markers, no get) or "end".
import os
import sys
import time

import hpcray as ray
from jobkit import record

MARKS, MODE = sys.argv[1], sys.argv[2]


@ray.remote
def f(value, name):
    open(os.path.join(MARKS, name), "w").close()


@ray.remote
def g(value, name):
    open(os.path.join(MARKS, name), "w").close()


x = ray.put(1)
f.remote(x, "f-put")               # a put ref, still alive in the driver; result dropped
g.remote(2, "g-plain")
f.remote(ray.put(3), "f-put-dropped")     # the put ref is dropped at once as well
if MODE == "wait":
    deadline = time.monotonic() + 30
    while len(os.listdir(MARKS)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    record("ran", sorted(os.listdir(MARKS)))
