"""Each node's object store: one MPI shared-memory window that every rank of the node maps.

Large objects (their pickle-5 out-of-band buffers: numpy arrays, bytes-like data) are written
once into the window; every rank of the node then reads them in place, zero-copy, as
read-only arrays. Small objects never come here: they travel inline in messages.

Layout. The window is cut into pages (``PAGE`` bytes). A second, small window holds the
tables the node's ranks share:

* ``page_slot[p]``: 0 if page ``p`` is free, else 1 + the slot of the object using it;
* one row per *slot* (an object of this store): ``state`` (FREE, IN_STORE, SPILLED), first
  page, size, pins (live views on any rank of the node, plus writers at work), ``doomed``
  (freed while pinned: the last unpin releases it) and the time of its last use.

Objects are named by their slot, never by their pages, so an object nobody reads can be
*spilled*: when an allocation finds no room, the least recently used unpinned objects are
written to files under the spill directory (made on the first spill, mode 0700, removed when
the store closes) and their pages reused; pinning a spilled object (any rank of the node, to
read it) restores it first. Only when nothing more can be spilled does ``allocate`` raise
ObjectStoreFullError.

Every change to the tables happens under a node-wide lock: ``flock`` on a lock file private
to the job (mode 0600, unlinked as soon as every rank of the node has it open), plus a thread
lock, since ``flock`` does not exclude the threads of one
process. Views are tracked by :class:`StoreBuffer` objects: numpy keeps one alive exactly as
long as an array reads through it, and its finalizer queues an unpin (applied by the rank's
progress loop or its next store operation, as finalizers may run anywhere).
"""
import fcntl
import mmap
import os
import shutil
import stat
import threading
import time
from collections import deque

import numpy as np

from ..exceptions import ObjectStoreFullError

PAGE = 1 << 16
OS_PAGE = 4096
ALIGN = 64

FREE, IN_STORE, SPILLED = 0, 1, 2
COPY_ROWS = 4096
COPY_FETCHING, COPY_READY = 1, 2
STATE, START, SIZE, PINS, DOOMED, USED = range(6)     # columns of the slot table


class StoreBuffer:
    """Read-only bytes of one stored buffer; keeps its object pinned while anything reads it."""
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
    """This rank's handle on its node's store (every rank of the node has one)."""

    def __init__(self, node_comm, capacity, tag, node_index, spill_dir):
        self.node_comm = node_comm
        self.node_index = node_index
        self.leader = node_comm.Get_rank() == 0
        self.pages = max(int(capacity) // PAGE, 1)
        self.capacity = self.pages * PAGE
        # MPICH's segment starts a few bytes past a page boundary: start the pages on one, so
        # that stored arrays are aligned and every page of ours is whole pages of the OS's.
        self.window, memory = _shared(node_comm, self.capacity + OS_PAGE if self.leader else 0)
        skip = -memory.address % OS_PAGE
        self.base = memory.address + skip
        self.data = np.frombuffer(memory, dtype=np.uint8)[skip:skip + self.capacity]
        slots = self.pages
        table_bytes = self.pages * 4 + slots * 6 * 8 + COPY_ROWS * 5 * 8
        self.table_window, table = _shared(node_comm, table_bytes if self.leader else 0)
        table = np.frombuffer(table, dtype=np.uint8)
        self.page_slot = table[:self.pages * 4].view(np.int32)
        slot_end = self.pages * 4 + slots * 6 * 8
        self.slots = table[self.pages * 4:slot_end].view(np.int64).reshape(slots, 6)
        # Copies of other nodes' objects, shared by this node's ranks: one row per copy,
        # (object id + 1, slot, COPY_* state, ranks holding it, rank filling it).
        self.copy_rows = table[slot_end:].view(np.int64).reshape(COPY_ROWS, 5)
        self.lock_path = f"/dev/shm/hpcray-{tag}-node{node_index}.lock"
        self.spill_dir = os.path.join(spill_dir, f"hpcray-spill-{tag}-node{node_index}")
        if self.leader:
            table[:] = 0
            os.close(os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        node_comm.Barrier()
        self.lock_fd = os.open(self.lock_path, os.O_RDWR)
        node_comm.Barrier()
        if self.leader:      # every rank has it open: drop the name, so nothing can be left
            os.unlink(self.lock_path)    # behind even by a job that is killed
        self.thread_lock = threading.RLock()
        self.released = deque()        # slots whose view here died (unpin pending)
        self.spills = 0                # objects this rank spilled (statistics)

    # ------------------------------------------------------------------ locking
    def _locked(self):
        return _StoreLock(self)

    def settle(self):
        """Unpin the objects whose last view here died (called from the progress loop)."""
        with self._locked():
            self._settle()

    def _settle(self):
        released = self.released
        while released:
            self._unpin(released.popleft())

    # ------------------------------------------------------------------ allocation
    def allocate(self, nbytes):
        """Reserve room for ``nbytes``; return the new object's slot, pinned once (the
        caller writes, then unpins). Spills unread objects if needed; raises
        ObjectStoreFullError when even that cannot make room."""
        count = max((nbytes + PAGE - 1) // PAGE, 1)
        with self._locked():
            self._settle()
            if count > self.pages:
                raise self._full(nbytes, count)
            start = self._find_run(count)
            while start is None:
                if not self._spill_one():
                    raise self._full(nbytes, count)
                start = self._find_run(count)
            slot = int(np.flatnonzero(self.slots[:, STATE] == FREE)[0])
            self.slots[slot] = (IN_STORE, start, nbytes, 1, 0, time.monotonic_ns())
            self.page_slot[start:start + count] = slot + 1
        return slot

    def write_object(self, buffers):
        """Store ``buffers`` (memoryviews) as one new object; return ``(slot, size, parts)``,
        ``parts`` being ``[(offset, nbytes), ...]`` of each buffer (aligned)."""
        offsets, size = layout(buffers)
        slot = self.allocate(size)                # pinned while we write
        try:
            start = int(self.slots[slot, START])
            for buffer, offset in zip(buffers, offsets):
                self.write(start, offset, buffer)
        finally:
            self.unpin(slot)
        return slot, size, [(offset, buffer.nbytes) for buffer, offset in zip(buffers, offsets)]

    def _full(self, nbytes, count):
        used = int(np.count_nonzero(self.page_slot)) * PAGE
        return ObjectStoreFullError(
            f"object store of node {self.node_index} is full: an object of {nbytes:,} bytes "
            f"does not fit ({used:,} of {self.capacity:,} bytes hold objects being read or "
            f"written, no free run of {count * PAGE:,} bytes); raise --object-store-memory / "
            f"HPCRAY_OBJECT_STORE_MEMORY or release references")

    def _find_run(self, count):
        free = self.page_slot == 0
        if count == 1:
            hits = np.flatnonzero(free)
            return int(hits[0]) if len(hits) else None
        edges = np.diff(np.concatenate(([0], free.view(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        fitting = np.flatnonzero(ends - starts >= count)
        return int(starts[fitting[0]]) if len(fitting) else None

    def _spill_one(self):
        """Write the least recently used unpinned object to disk and free its pages."""
        slots = self.slots
        candidates = np.flatnonzero((slots[:, STATE] == IN_STORE) & (slots[:, PINS] == 0))
        if not len(candidates):
            return False
        slot = int(candidates[np.argmin(slots[candidates, USED])])
        start, size = int(slots[slot, START]), int(slots[slot, SIZE])
        path = self._spill_path(slot)
        try:
            self._make_spill_dir()
            fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb", closefd=True) as file:
                file.write(self.data[start * PAGE:start * PAGE + size])
        except OSError as error:
            raise ObjectStoreFullError(
                f"object store of node {self.node_index} is full and spilling to "
                f"{self.spill_dir} failed: {error}") from error
        slots[slot, STATE] = SPILLED
        self._free_pages(slot)
        self.spills += 1
        return True

    def _make_spill_dir(self):
        """Make the spill directory at the first spill of the node (node lock held; made at
        start, every job that died left an empty one behind); an existing one must be this
        job's: a private directory of this user."""
        try:
            os.makedirs(self.spill_dir, mode=0o700)
        except FileExistsError:
            info = os.lstat(self.spill_dir)
            if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
                    or info.st_mode & 0o077):
                raise OSError(f"{self.spill_dir} exists and is not a private directory of "
                              f"this user") from None

    def _restore(self, slot):
        """Bring a spilled object back into the store (lock held)."""
        size = int(self.slots[slot, SIZE])
        count = max((size + PAGE - 1) // PAGE, 1)
        start = self._find_run(count)
        while start is None:
            if not self._spill_one():
                raise self._full(size, count)
            start = self._find_run(count)
        path = self._spill_path(slot)
        with open(path, "rb") as file:
            file.readinto(memoryview(self.data[start * PAGE:start * PAGE + size]))
        os.unlink(path)
        self.slots[slot, STATE] = IN_STORE
        self.slots[slot, START] = start
        self.page_slot[start:start + count] = slot + 1

    def _spill_path(self, slot):
        return os.path.join(self.spill_dir, f"slot{slot}")

    def _free_pages(self, slot):
        start, size = int(self.slots[slot, START]), int(self.slots[slot, SIZE])
        count = max((size + PAGE - 1) // PAGE, 1)
        self.page_slot[start:start + count] = 0

    # ------------------------------------------------------------------ lifetime
    def free(self, slot):
        """The object is dead; if views still read it, it goes when the last one does."""
        with self._locked():
            self._settle()
            if self.slots[slot, STATE] == FREE:
                return
            if self.slots[slot, PINS] > 0:
                self.slots[slot, DOOMED] = 1
            else:
                self._release(slot)

    def _release(self, slot):
        state = self.slots[slot, STATE]
        if state == IN_STORE:
            self._free_pages(slot)
        elif state == SPILLED:
            try:
                os.unlink(self._spill_path(slot))
            except OSError:
                pass
        self.slots[slot] = 0

    def pin(self, slot, count=1):
        """Hold the object in memory (restoring it if spilled); return its first page."""
        with self._locked():
            self._settle()
            if self.slots[slot, STATE] == FREE:
                raise KeyError(f"slot {slot} of node {self.node_index}'s store holds no object")
            return self._pin(slot, count)

    def _pin(self, slot, count=1):
        row = self.slots[slot]
        if row[STATE] == SPILLED:
            self._restore(slot)
        row[PINS] += count
        row[USED] = time.monotonic_ns()
        return int(row[START])

    def unpin(self, slot):
        with self._locked():
            self._settle()
            self._unpin(slot)

    def _unpin(self, slot):
        row = self.slots[slot]
        row[PINS] -= 1
        if row[PINS] <= 0 and row[DOOMED]:
            self._release(slot)

    def first_page(self, slot):
        """The first page of an object the caller keeps pinned."""
        return int(self.slots[slot, START])

    def holds(self, slot):
        return self.slots[slot, STATE] != FREE

    def in_use(self):
        """Bytes of the node's store that hold objects right now (spilled ones excluded)."""
        with self._locked():
            self._settle()
            return int(np.count_nonzero(self.page_slot)) * PAGE

    def spilled(self):
        """How many objects of this node are on disk right now."""
        return int(np.count_nonzero(self.slots[:, STATE] == SPILLED))

    def spilled_bytes(self):
        """Bytes of this node's objects that are on disk right now."""
        return int(self.slots[self.slots[:, STATE] == SPILLED, SIZE].sum())

    def object_count(self):
        """Objects in this node's store or spilled from it."""
        return int(np.count_nonzero(self.slots[:, STATE] != FREE))

    # ------------------------------------------------------------------ copies from other nodes
    def claim_copy(self, object_id, nbytes, rank):
        """Find or start this node's copy of a remote object; count this rank as a holder.

        Returns ``(slot, state, mine)``: READY (read it now), FETCHING (another rank of the
        node is copying it: wait for READY), or ``mine=True`` with a new slot, pinned, that
        the caller (``rank``) fills and then marks ready. ``slot`` is None if the directory
        is full (the caller then makes a private copy)."""
        key = object_id + 1
        with self._locked():
            self._settle()
            rows = self.copy_rows
            hit = np.flatnonzero(rows[:, 0] == key)
            if len(hit):
                row = rows[hit[0]]
                row[3] += 1
                return int(row[1]), int(row[2]), False
            empty = np.flatnonzero(rows[:, 0] == 0)
            if not len(empty):
                return None, None, False
        slot = self.allocate(nbytes)             # pinned; may spill
        with self._locked():
            rows = self.copy_rows
            hit = np.flatnonzero(rows[:, 0] == key)
            if len(hit):                          # another rank started it meanwhile
                self._unpin(slot)
                self._release(slot)
                row = rows[hit[0]]
                row[3] += 1
                return int(row[1]), int(row[2]), False
            empty = np.flatnonzero(rows[:, 0] == 0)
            rows[empty[0]] = (key, slot, COPY_FETCHING, 1, rank)
        return slot, COPY_FETCHING, True

    def abandon_copies_of(self, rank):
        """``rank`` died: the copies it was filling never finish; drop them (the ranks that
        wait for one see it gone and try again)."""
        with self._locked():
            rows = self.copy_rows
            for index in np.flatnonzero((rows[:, 2] == COPY_FETCHING) & (rows[:, 4] == rank)
                                        & (rows[:, 0] != 0)):
                slot = int(rows[index, 1])
                rows[index] = 0
                self._release(slot)

    def copy_state(self, object_id):
        """COPY_READY, COPY_FETCHING, or 0 if the node has no copy (any more)."""
        hit = np.flatnonzero(self.copy_rows[:, 0] == object_id + 1)
        return int(self.copy_rows[hit[0], 2]) if len(hit) else 0

    def pin_copy(self, object_id):
        """Pin this node's finished copy of a remote object, to serve it to another node;
        return ``(slot, first page)``, or None if the node has no finished copy of it."""
        with self._locked():
            self._settle()
            hit = np.flatnonzero(self.copy_rows[:, 0] == object_id + 1)
            if not len(hit) or self.copy_rows[hit[0], 2] != COPY_READY:
                return None
            slot = int(self.copy_rows[hit[0], 1])
            return slot, self._pin(slot)

    def copy_done(self, object_id, ok):
        """The rank filling a copy is done: mark it ready, or drop it (every holder retries)."""
        with self._locked():
            rows = self.copy_rows
            hit = np.flatnonzero(rows[:, 0] == object_id + 1)
            if not len(hit):
                return
            row = rows[hit[0]]
            slot = int(row[1])
            self._unpin(slot)
            if ok:
                row[2] = COPY_READY
            else:
                row[:] = 0
                self._release(slot)

    def release_copy(self, object_id):
        """This rank no longer holds the copy; the last holder frees it."""
        with self._locked():
            self._settle()
            rows = self.copy_rows
            hit = np.flatnonzero(rows[:, 0] == object_id + 1)
            if not len(hit):
                return
            row = rows[hit[0]]
            row[3] -= 1
            if row[3] <= 0:
                slot = int(row[1])
                row[:] = 0
                if self.slots[slot, PINS] > 0:
                    self.slots[slot, DOOMED] = 1
                else:
                    self._release(slot)

    # ------------------------------------------------------------------ access (pinned)
    def write(self, start, offset, buffer):
        """Copy ``buffer`` into an object whose first page is ``start``, at byte ``offset``."""
        source = np.frombuffer(buffer, dtype=np.uint8)
        position = start * PAGE + offset
        self.data[position:position + source.nbytes] = source

    def writable(self, start, nbytes):
        position = start * PAGE
        return self.data[position:position + nbytes]

    def view(self, slot, start, offset, nbytes):
        """A read-only view of stored bytes; the caller pinned ``slot`` once for this view."""
        released = self.released
        buffer = StoreBuffer(self.base + start * PAGE + offset, nbytes,
                             lambda: released.append(slot))
        return np.asarray(buffer)

    def abandon(self):
        """The end of a job in which a rank died: no collective free (it would never return);
        remove the spill directory (the node's first rank, or any rank if it died)."""
        shutil.rmtree(self.spill_dir, ignore_errors=True)
        try:
            os.close(self.lock_fd)
        except OSError:
            pass

    def close(self):
        with self._locked():
            self._settle()
        os.close(self.lock_fd)
        self.node_comm.Barrier()
        if self.leader:
            shutil.rmtree(self.spill_dir, ignore_errors=True)
        self.data = self.page_slot = self.slots = self.copy_rows = None
        for window in (self.table_window, self.window):
            if window is not None:
                window.Free()


def _shared(node_comm, nbytes):
    """``(window, memory)``: ``nbytes`` that every rank of the node maps (the first rank
    allocates; the others pass 0), and that the worker processes each rank forks see too.

    MPICH shares a window through a file in /dev/shm, except on a node of one rank, where its
    memory is private: a forked worker would read a copy frozen at its birth. There the store
    is an anonymous shared mapping of ours instead (no window: nobody else maps it)."""
    from mpi4py import MPI
    if node_comm.Get_size() == 1:
        memory = mmap.mmap(-1, max(nbytes, OS_PAGE))
        return None, MPI.buffer.frombuffer(memory)
    window = MPI.Win.Allocate_shared(nbytes, 1, comm=node_comm)
    memory, _ = window.Shared_query(0)
    return window, memory


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
    """Offsets of ``buffers`` packed into one object (each aligned); return (offsets, total)."""
    offsets, total = [], 0
    for buffer in buffers:
        offsets.append(total)
        total += (buffer.nbytes + ALIGN - 1) // ALIGN * ALIGN
    return offsets, total
