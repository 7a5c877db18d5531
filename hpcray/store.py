"""Each node's object store: one MPI shared-memory window that every rank of the node maps.

Large objects (their pickle-5 out-of-band buffers: numpy arrays, bytes-like data) are written
once into the window; every rank of the node then reads them in place, zero-copy, as
read-only arrays. Small objects never come here: they travel inline in messages.

Layout. The window is cut into pages (``PAGE`` bytes). A second, small window holds the
allocation table shared by the node's ranks:

* ``state[p]``: 0 if page ``p`` is free; ``L > 0`` at the first page of an allocated run of
  ``L`` pages; ``-1`` on the run's other pages;
* ``pins[p]``: at a run's first page, how many live views (on any rank of the node) read it;
* ``doomed[p]``: the run was freed while pinned; the last unpin releases it.

Every change to the table happens under a node-wide lock: ``flock`` on a lock file private
to the job (mode 0600), plus a thread lock, since ``flock`` does not exclude the threads of one
process. Views are tracked by :class:`StoreBuffer` objects: numpy keeps one alive exactly as
long as an array reads through it, and its finalizer unpins the run (deferred to the next
store operation, as finalizers may run anywhere).
"""
import fcntl
import os
import threading
from collections import deque

import numpy as np

from .exceptions import ObjectStoreFullError

PAGE = 1 << 16
ALIGN = 64


class StoreBuffer:
    """Read-only bytes of one stored buffer; keeps its run pinned while anything reads it."""
    __slots__ = ("__array_interface__", "_release", "__weakref__")

    def __init__(self, address, nbytes, release):
        self.__array_interface__ = {"data": (address, True), "shape": (nbytes,),
                                    "typestr": "|u1", "version": 3}
        self._release = release

    def __del__(self):
        release, self._release = self._release, None
        if release is not None:
            release()


class NodeStore:
    def __init__(self, node_comm, capacity, tag, node_index):
        from mpi4py import MPI
        self.node_comm = node_comm
        self.node_index = node_index
        self.leader = node_comm.Get_rank() == 0
        self.pages = max(int(capacity) // PAGE, 1)
        self.capacity = self.pages * PAGE
        self.window = MPI.Win.Allocate_shared(self.capacity if self.leader else 0, 1,
                                              comm=node_comm)
        memory, _ = self.window.Shared_query(0)
        self.memory = memory
        self.base = memory.address
        self.data = np.frombuffer(memory, dtype=np.uint8)
        table_bytes = self.pages * 9
        self.table_window = MPI.Win.Allocate_shared(table_bytes if self.leader else 0, 1,
                                                    comm=node_comm)
        table, _ = self.table_window.Shared_query(0)
        table = np.frombuffer(table, dtype=np.uint8)
        self.state = table[:self.pages * 4].view(np.int32)
        self.pins = table[self.pages * 4:self.pages * 8].view(np.int32)
        self.doomed = table[self.pages * 8:]
        self.lock_path = f"/dev/shm/hpcray-{tag}-node{node_index}.lock"
        if self.leader:
            table[:] = 0
            fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            os.close(fd)
        node_comm.Barrier()
        self.lock_fd = os.open(self.lock_path, os.O_RDWR)
        self.thread_lock = threading.RLock()
        self.released = deque()        # runs whose last local view died (unpin pending)

    # ------------------------------------------------------------------ locking
    def _locked(self):
        return _StoreLock(self)

    def settle(self):
        """Unpin the runs whose last view here died (called from the rank's progress loop)."""
        with self._locked():
            self._settle()

    def _settle(self):
        """Unpin runs whose views died (lock held)."""
        released = self.released
        while released:
            self._unpin(released.popleft())

    # ------------------------------------------------------------------ allocation
    def allocate(self, nbytes):
        """Reserve ``nbytes``; return the first page of the run. Raises ObjectStoreFullError."""
        count = max((nbytes + PAGE - 1) // PAGE, 1)
        with self._locked():
            self._settle()
            start = self._find_run(count)
            if start is None:
                used = int(np.count_nonzero(self.state))
                raise ObjectStoreFullError(
                    f"object store of node {self.node_index} is full: an object of {nbytes:,} "
                    f"bytes does not fit ({used * PAGE:,} of {self.capacity:,} bytes in use, no "
                    f"free run of {count * PAGE:,} bytes); raise --object-store-memory / "
                    f"HPCRAY_OBJECT_STORE_MEMORY or release references")
            self.state[start] = count
            if count > 1:
                self.state[start + 1:start + count] = -1
            self.pins[start] = 0
            self.doomed[start] = 0
        return start

    def _find_run(self, count):
        free = self.state == 0
        if count == 1:
            hits = np.flatnonzero(free)
            return int(hits[0]) if len(hits) else None
        edges = np.diff(np.concatenate(([0], free.view(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        fitting = np.flatnonzero(ends - starts >= count)
        return int(starts[fitting[0]]) if len(fitting) else None

    def free(self, start):
        """Release a run; if views still read it, release it when the last one goes."""
        with self._locked():
            self._settle()
            if self.state[start] <= 0:
                return
            if self.pins[start] > 0:
                self.doomed[start] = 1
            else:
                self._release(start)

    def _release(self, start):
        count = int(self.state[start])
        self.state[start:start + count] = 0
        self.pins[start] = 0
        self.doomed[start] = 0

    def pin(self, start, count=1):
        with self._locked():
            self._settle()
            self.pins[start] += count

    def unpin(self, start):
        with self._locked():
            self._settle()
            self._unpin(start)

    def _unpin(self, start):
        self.pins[start] -= 1
        if self.pins[start] <= 0 and self.doomed[start]:
            self._release(start)

    def in_use(self):
        """Bytes of the node's store allocated right now (all ranks)."""
        with self._locked():
            self._settle()
            return int(np.count_nonzero(self.state)) * PAGE

    # ------------------------------------------------------------------ access
    def write(self, start, offset, buffer):
        """Copy ``buffer`` into the run starting at page ``start``, at byte ``offset``."""
        source = np.frombuffer(buffer, dtype=np.uint8)
        position = start * PAGE + offset
        self.data[position:position + source.nbytes] = source

    def writable(self, start, nbytes):
        position = start * PAGE
        return self.data[position:position + nbytes]

    def view(self, start, offset, nbytes):
        """A read-only view of stored bytes; the run stays pinned while the view lives."""
        released = self.released
        buffer = StoreBuffer(self.base + start * PAGE + offset, nbytes,
                             lambda: released.append(start))
        return np.asarray(buffer)

    def close(self):
        with self._locked():
            self._settle()
        os.close(self.lock_fd)
        self.node_comm.Barrier()
        if self.leader:
            try:
                os.unlink(self.lock_path)
            except OSError:
                pass
        self.data = self.state = self.pins = self.doomed = self.memory = None
        self.table_window.Free()
        self.window.Free()


class _StoreLock:
    __slots__ = ("store",)

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        self.store.thread_lock.acquire()
        fcntl.flock(self.store.lock_fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.store.lock_fd, fcntl.LOCK_UN)
        self.store.thread_lock.release()


def layout(buffers):
    """Offsets of ``buffers`` packed into one run (each aligned); return (offsets, total)."""
    offsets, total = [], 0
    for buffer in buffers:
        offsets.append(total)
        total += (buffer.nbytes + ALIGN - 1) // ALIGN * ALIGN
    return offsets, total
