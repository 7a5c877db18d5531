# Defect 2: a script that ends while long tasks (10 s) are running, or were just submitted.
# The job waited for them, then MPI_Abort(1) after HPCRAY_SHUTDOWN_GRACE. As in Ray, the job
# must end at once with the script's status, abandoning them, and leave nothing behind.
# argv: a folder for the tasks' marker files; "started" (end once the tasks run) or "at-once".
import os
import sys
import time

import hpcray as ray
from jobkit import record, runtime

ray.init()
MARKS, WHEN = sys.argv[1], sys.argv[2]


def segments():
    """MPICH's shared-memory files this process maps (named, or already unlinked)."""
    names = set()
    for line in open("/proc/self/maps"):
        for field in line.split():
            if field.startswith("/dev/shm/mpich_shm_"):
                names.add(field)
    return sorted(names)


@ray.remote
def long(i):
    open(os.path.join(MARKS, f"started-{i}"), "w").close()
    time.sleep(10)
    open(os.path.join(MARKS, f"finished-{i}"), "w").close()


@ray.remote
def worker_segments():
    return segments()


record("tag", runtime().job.job_tag)
record("segments", sorted(set(segments()) | set(ray.get(worker_segments.remote()))))
refs = [long.remote(i) for i in range(3)]
if WHEN == "started":              # every worker runs one (2 in the embedded default)
    deadline = time.monotonic() + 30
    while len(os.listdir(MARKS)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    record("started", len(os.listdir(MARKS)))
record("end", time.time())
