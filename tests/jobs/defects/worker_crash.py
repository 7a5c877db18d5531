# Defect 6: a job ended by a crashed worker (a task that calls os._exit, or is SIGKILLed; under
# mpiexec the whole job then dies) left MPICH's /dev/shm/mpich_shm_* file and an empty
# hpcray-spill-* directory behind. It must leave nothing. argv: "exit" or "kill".
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


@ray.remote
def crash(how):
    if how == "exit":
        os._exit(3)
    os.kill(os.getpid(), 9)


record("tag", runtime().job.job_tag)
record("segments", sorted(set(segments()) | set(ray.get(worker_segments.remote()))))
ray.get(crash.remote(sys.argv[1]))
record("survived", True)
