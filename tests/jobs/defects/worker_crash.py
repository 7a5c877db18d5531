# Defect 6: a job ended by a crashed worker (a task that called os._exit, or was SIGKILLed,
# took its rank and, under mpiexec, the whole job down) left MPICH's /dev/shm/mpich_shm_*
# file and an empty hpcray-spill-* directory behind. Tasks now run in worker processes: the
# crash fails the task alone (WorkerCrashedError once its retries are spent), the job goes
# on, and it must leave nothing behind. argv: "exit" or "kill".
import os
import sys

import hpcray as ray
from jobkit import record, runtime


def segments():
    """MPICH's shared-memory files this process maps (named, or already unlinked)."""
    names = set()
    for line in open("/proc/self/maps"):
        for field in line.split():
            if field.startswith("/dev/shm/mpich_shm_"):
                names.add(field)
    return sorted(names)


@ray.remote
def worker_segments():
    return segments()


@ray.remote(max_retries=1)
def crash(how):
    if how == "exit":
        os._exit(3)
    os.kill(os.getpid(), 9)


record("tag", runtime().job.job_tag)
record("segments", sorted(set(segments()) | set(ray.get(worker_segments.remote()))))
try:
    ray.get(crash.remote(sys.argv[1]), timeout=60)
except ray.exceptions.WorkerCrashedError as error:
    record("crashed", [error.exit_code, error.attempts, str(error)])
record("after", ray.get(worker_segments.remote(), timeout=60) != [])
record("survived", True)
