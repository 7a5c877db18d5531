"""Tasks whose worker process dies (a segfault through ctypes, os._exit, SIGKILL): each fails
alone with WorkerCrashedError (exit status, rank and host, attempts) or is retried and
recovers; the ranks go on. argv[1]: a directory for the tasks' attempt marks."""
import ctypes
import os
import signal
import sys
import time

import hpcray as ray
from jobkit import check, record

MARKS = sys.argv[1]


def mark(name):
    """Count this attempt of ``name`` (a line per attempt: when it started)."""
    path = os.path.join(MARKS, name)
    with open(path, "a") as file:
        file.write(f"{time.time()!r}\n")
    with open(path) as file:
        return [float(line) for line in file]


@ray.remote(max_retries=0)
def segfault():
    mark("segfault")
    ctypes.string_at(0)                         # reads address 0: SIGSEGV


@ray.remote(max_retries=0)
def exits():
    mark("exits")
    os._exit(7)


@ray.remote(max_retries=0)
def killed():
    mark("killed")
    os.kill(os.getpid(), signal.SIGKILL)


@ray.remote                                     # Ray's default: 3 retries for crashes
def crash_once():
    attempts = mark("crash_once")
    if len(attempts) == 1:
        os._exit(1)
    return len(attempts), attempts[1] - attempts[0]


@ray.remote(max_retries=2)
def always_crashes():
    mark("always")
    os._exit(3)


@ray.remote
def where():
    context = ray.get_runtime_context()
    return context.get_rank(), os.getpid()


def crash(name, task):
    started = time.time()
    try:
        ray.get(task.remote(), timeout=60)
    except ray.exceptions.WorkerCrashedError as error:
        record(name, {"exit_code": error.exit_code, "attempts": error.attempts,
                      "text": str(error), "seconds": time.time() - started,
                      "is_ray_error": isinstance(error, ray.exceptions.RayError)})


before = ray.get([where.remote() for _ in range(8)], timeout=60)
crash("segfault", segfault)
crash("exits", exits)
crash("killed", killed)
crash("always", always_crashes)
record("always_marks", len(mark("always")) - 1)


@check
def retried():
    attempts, retry_after = ray.get(crash_once.remote(), timeout=60)
    return {"attempts": attempts, "retry_seconds": retry_after}


@ray.remote
def crash_first_time(name):
    if len(mark(name)) == 1:
        os._exit(1)
    return name


@check
def many_crashes_in_a_row():
    """Each crash gives back the slot it held (at the head too), so crash after crash the
    retries still find room."""
    return [ray.get(crash_first_time.remote(f"row{i}"), timeout=30) for i in range(12)]


after = ray.get([where.remote() for _ in range(8)], timeout=60)
record("ranks_alive", all(node["Alive"] for node in ray.nodes()))
record("ranks_after", sorted({rank for rank, _ in after}))
record("ranks_before", sorted({rank for rank, _ in before}))
