"""How full a node's memory is, and when the memory monitor acts (as Ray's memory monitor).

While a rank runs tasks or actors, every ``HPCRAY_MEMORY_MONITOR_REFRESH_MS`` it reads the
memory its processes may use: its cgroup's when the cgroup has a limit (Slurm's ``--mem``, a
container), else the machine's; "used" leaves out the page cache the kernel can drop, as
Ray's does. Above ``HPCRAY_MEMORY_USAGE_THRESHOLD`` the rank that runs the node's newest
retriable task or actor ends its worker process (``pool.WorkerPool``; the ranks of a node agree through its load table,
``store/node_load.py``), one at a time on the node, before the kernel's OOM killer or
Slurm's cgroup takes a whole rank.

No MPI and no runtime: :class:`MemoryMonitor` takes a ``read`` function and a clock, and
``tests/test_state_holders.py`` drives it with fakes.
"""
import os
import time

import psutil

CGROUP_ROOT = "/sys/fs/cgroup"
GIB = 1 << 30


def node_memory():
    """``(used bytes, limit bytes, what the limit is)`` for this process's memory."""
    machine = psutil.virtual_memory()
    limited = _cgroup_memory()
    if limited is not None and limited[1] < machine.total:
        return limited
    return machine.total - machine.available, machine.total, "the machine"


def _cgroup_memory():
    """Use and limit of the nearest cgroup (v2, else v1) above this process with a memory
    limit, or None."""
    try:
        with open("/proc/self/cgroup") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":                   # cgroup v2: walk up to a limit
            parts = path.strip("/").split("/") if path.strip("/") else []
            while True:
                base = os.path.join(CGROUP_ROOT, *parts)
                found = _read_v2(base)
                if found is not None:
                    return found
                if not parts:
                    break
                parts.pop()
        elif "memory" in controllers.split(","):
            found = _read_v1(os.path.join(CGROUP_ROOT, "memory", path.lstrip("/")))
            if found is not None:
                return found
    return None


def _read_v2(base):
    try:
        with open(os.path.join(base, "memory.max")) as file:
            limit = file.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current")) as file:
            used = int(file.read())
    except (OSError, ValueError):
        return None
    used -= _stat(os.path.join(base, "memory.stat"), "inactive_file")
    return max(used, 0), int(limit), f"the cgroup {base}"


def _read_v1(base):
    try:
        with open(os.path.join(base, "memory.limit_in_bytes")) as file:
            limit = int(file.read())
        with open(os.path.join(base, "memory.usage_in_bytes")) as file:
            used = int(file.read())
    except (OSError, ValueError):
        return None
    if limit >= 1 << 60:                       # "no limit"
        return None
    used -= _stat(os.path.join(base, "memory.stat"), "total_inactive_file")
    return max(used, 0), limit, f"the cgroup {base}"


def _stat(path, key):
    try:
        with open(path) as file:
            for line in file:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


class MemoryMonitor:
    """When to look at the node's memory, and whether it is over the threshold.

    ``threshold``: the fraction of the limit that is too much; ``refresh_ms``: the time
    between two looks; ``read()``: ``(used, limit, what)``; ``clock()``: seconds."""

    def __init__(self, threshold, refresh_ms, read=node_memory, clock=time.monotonic):
        self.threshold = threshold
        self.interval = refresh_ms / 1000.0
        self.read = read
        self.clock = clock
        self.next_look = 0.0

    def due(self):
        """Whether the next look is due."""
        return self.clock() >= self.next_look

    def over(self):
        """Words for what it saw when a look is due and memory is above the threshold;
        None otherwise."""
        now = self.clock()
        if now < self.next_look:
            return None
        self.next_look = now + self.interval
        used, limit, what = self.read()
        if used <= self.threshold * limit:
            return None
        return (f"the node's memory use was {used / limit:.0%} ({used / GIB:.1f} of "
                f"{limit / GIB:.1f} GiB of {what}), above HPCRAY_MEMORY_USAGE_THRESHOLD="
                f"{self.threshold:g}")
