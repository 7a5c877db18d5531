"""Objects of other nodes, copied into this node's store: one copy per node.

A rank that needs an object stored on another node claims it in the node's copy directory
(``NodeStore.claim_copy``): the first rank of the node to need it allocates room in this
node's store and brings the bytes in; the node's other ranks wait for the copy to be ready and
read the same pages. Each rank keeps the copies it used in an LRU cache (a quarter of the
store); the last rank of the node to drop a copy frees it.

Two ways to move the bytes (``HPCRAY_TRANSFER``):

* ``rma`` (default): every node's store is exposed in one RMA window over the job (passive
  target, ``Lock_all`` for the job's life). ``RMA_OPEN`` asks the node's first rank to hold
  the object in place and to keep MPI progressing (MPICH's RMA here works by active
  messages: a Get moves only while the target is inside MPI, a piece per progress call, so
  both sides spin MPI's progress engine while Gets are in flight); ``MPI_Rget`` then reads the
  bytes straight into our store and ``RMA_CLOSE`` releases them. 4-5.3 GB/s for 200 MB here.
* ``p2p``: ``FETCH`` to the rank that wrote the object, which answers with ``Isend``s from
  its store matched by ``Irecv``s posted straight into ours, in chunks of 32 MiB all in
  flight at once. 3.4-4.2 GB/s for 200 MB here.
"""
import itertools
import os
import time
from collections import OrderedDict

from ..wire import messages, serialization
from ..wire.messages import DATA_TAG_BASE, DATA_TAGS
from ..wire.objects import STORED, stored
from .copy_tree import CopyTrees
from .node_store import COPY_READY, PAGE


CHUNK = 32 << 20      # bytes per message of a transfer: several in flight pipeline the copy
MAX_CHUNKS = 64       # tags reserved per transfer (larger objects get larger chunks)
RMA_CHUNK = 1 << 30   # Gets: one per GiB (smaller ones measured slower here)
RMA_SPIN = 0.001      # seconds each progress call spins MPI while Gets are in flight
SPIN_TAG = 32766      # a tag no message uses: Iprobe on it only drives MPI's progress


class Landing:
    """Where a copy of a remote object lands on this node: its slot here (pinned), the remote
    object record, and whether the copy is the node's (shared) or this rank's own."""
    __slots__ = ("local_slot", "obj", "shared", "started")

    def __init__(self, local_slot, obj, shared):
        self.local_slot = local_slot
        self.obj = obj
        self.shared = shared
        self.started = time.time()             # (for the timeline)


class Incoming:
    """Bytes on their way into this node's store: the MPI requests moving them, and, for a
    Get, the rank read from, its slot and the tree's coordinator (``rma``; None for the
    two-sided protocol)."""
    __slots__ = ("requests", "object_id", "landing", "source", "source_slot", "coordinator",
                 "rma")

    def __init__(self, requests, object_id, landing, source=None, source_slot=None,
                 coordinator=None, rma=False):
        self.requests = requests
        self.object_id = object_id
        self.landing = landing
        self.source = source
        self.source_slot = source_slot
        self.coordinator = coordinator
        self.rma = rma


class Outgoing:
    """Bytes this rank sends (two-sided): the requests, the slot pinned meanwhile, and the
    reader."""
    __slots__ = ("requests", "slot", "dest")

    def __init__(self, requests, slot, dest):
        self.requests = requests
        self.slot = slot
        self.dest = dest


class Awaited:
    """A copy another rank of this node is making: ours to read once ready."""
    __slots__ = ("copy", "obj")

    def __init__(self, copy, obj):
        self.copy = copy
        self.obj = obj


def chunks(size, chunk=CHUNK):
    """``[(begin, end), ...]`` cutting ``size`` bytes into at most MAX_CHUNKS messages."""
    step = max(chunk, -(-size // MAX_CHUNKS))
    return [(begin, min(begin + step, size)) for begin in range(0, size, step)] or [(0, 0)]


class NodeCopies:
    """This rank's side of node-to-node copies (all methods run with the runtime lock held).

    Collaborators: the runtime's communicator ``comm`` (raw transfers, the RMA window), this
    rank's ``store`` and ``transport``, where nodes are (``node_index`` of this rank,
    ``node_leaders``: node index -> its first rank), ``cache_limit`` (bytes of copies this
    rank keeps), ``fanout`` (HPCRAY_COPY_FANOUT) and ``on_arrival()``, called whenever a copy
    lands (it wakes whoever waits)."""

    def __init__(self, comm, store, transport, node_index, node_leaders, cache_limit, fanout,
                 on_arrival):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.store = store
        self.transport = transport
        self.node_index = node_index
        self.node_leaders = node_leaders
        self.cache_limit = cache_limit
        self.fanout = fanout
        self.on_arrival = on_arrival
        self.on_transfer = lambda object_id, nbytes, from_node, to_node, started: None
        #                                        (a copy is in: the timeline's, set later)
        self.held = OrderedDict()          # object id -> copy this rank holds (LRU)
        self.held_bytes = 0
        self.private = set()               # held copies outside the node's directory
        self.waiting = {}                  # object id -> callbacks waiting for its copy
        self.incoming = []                 # Incoming transfers
        self.outgoing = []                 # Outgoing transfers (two-sided)
        self.awaiting = {}                 # object id -> Awaited (another rank copies it)
        self.opening = {}                  # object id -> Landing (asked, not answered yet)
        self.serving = 0                   # Gets other ranks are making from this node's store
        self.serving_to = {}               # reader rank -> [slots pinned for its Gets]
        self.assigned = {}                 # (object id, reader) -> source (tree coordinator)
        self.served = 0                    # copies served to other nodes so far (statistics)
        self.window = None                 # the job's RMA window over the node stores
        self.trees = None                  # at a node's first rank: copies of its objects
        self.home_slots = {}               # object id -> its slot here, while copies go out
        self._tags = itertools.count()

    def localizing(self, object_id, callback):
        """Wrap ``callback`` so that it gets a copy in this node's store of a remote object."""
        def deliver(obj):
            if obj.kind != STORED or obj.node == self.node_index:
                callback(obj)
                return
            copy = self.held.get(object_id)
            if copy is not None:
                self.held.move_to_end(object_id)
                callback(copy)
                return
            waiters = self.waiting.get(object_id)
            if waiters is not None:
                waiters.append(callback)
                return
            self.waiting[object_id] = [callback]
            self._claim(object_id, obj)
        return deliver

    def held_copy(self, object_id):
        """This rank's copy of an object of another node, if it holds one, else None."""
        return self.held.get(object_id)

    def _claim(self, object_id, obj):
        """One copy per node: use the node's copy, wait for the rank making it, or make it."""
        try:
            local_slot, state, mine = self.store.claim_copy(object_id, obj.size, self.rank)
            shared = local_slot is not None
            if not shared:                     # the node's copy directory is full
                local_slot, mine = self.store.allocate(obj.size), True
        except Exception as error:
            self._deliver(object_id, serialization.exception_object(error))
            return
        copy = stored(self.node_index, self.rank, local_slot, obj.size, obj.header, obj.parts)
        if mine:
            self._start_fetch(object_id, obj, local_slot, shared)
        elif state == COPY_READY:
            self._hold(object_id, copy, shared=True)
            self._deliver(object_id, copy)
        else:                                  # another rank of this node is copying it
            self.awaiting[object_id] = Awaited(copy, obj)

    # ------------------------------------------------------------------ one-sided (RMA)
    def open_window(self):
        """Collective over the job: expose every node's store (its first rank's memory) in one
        RMA window, in a passive-target epoch to all ranks for the whole job."""
        from mpi4py import MPI
        store = self.store
        self.window = MPI.Win.Create(store.data if store.leader else None, 1, comm=self.comm)
        self.window.Lock_all()
        if store.leader and self.fanout > 0:
            self.trees = CopyTrees(self.rank, self.fanout)

    def close_window(self):
        if self.window is not None:
            self.window.Unlock_all()
            self.window.Free()
            self.window = None

    def _start_get(self, object_id, obj, local_slot, shared):
        """Ask the object's home node for a copy. Its first rank either holds the object in
        place for us (and keeps polling MPI, which a passive target must do for a Get to
        progress here) or has a node that already copied it do so (``copy_tree.py``); the
        answer, RMA_READY, says whose window to read with MPI_Rget."""
        landing = Landing(local_slot, obj, shared)
        home = self.node_leaders[obj.node]
        if home in self.transport.dead:
            self._finish(object_id, landing, ok=False, why=f"rank {home}, which held it, died")
            return
        self.opening[object_id] = landing
        self.transport.send(home, messages.rma_open(
            object_id, obj.slot, self.rank, self.node_leaders[self.node_index]))

    def on_rma_open(self, object_id, slot, requester, requester_leader):
        """At the home node's first rank: serve the copy, or pick who does (a tree)."""
        if self.trees is None:
            self._serve_home(object_id, slot, requester, tracked=False)
            return
        self.home_slots[object_id] = slot
        self._start_copies(object_id, self.trees.request(object_id, requester, requester_leader))

    def _start_copies(self, object_id, started):
        slot = self.home_slots.get(object_id)
        for requester, source in started:
            self.assigned[(object_id, requester)] = source
            if source == self.rank:
                self._serve_home(object_id, slot, requester, tracked=True)
            else:
                self.transport.send(source, messages.rma_serve(object_id, requester, self.rank))
        if object_id not in self.trees.trees:
            self.home_slots.pop(object_id, None)

    def _serve_home(self, object_id, slot, requester, tracked):
        try:
            start = self.store.pin(slot)       # restores it if it was spilled
        except Exception:
            start = None
        self._ready(requester, object_id, start, slot, self.rank if tracked else None)

    def on_rma_serve(self, object_id, requester, coordinator):
        """At a node holding a copy: the home node asks us to serve one more."""
        found = self.store.pin_copy(object_id)
        if found is None:                      # freed since: the home node places it again
            self.transport.send(coordinator, messages.rma_gone(object_id, self.rank, requester))
            return
        slot, start = found
        self._ready(requester, object_id, start, slot, coordinator)

    def _ready(self, requester, object_id, start, slot, coordinator):
        """Tell the reader where to Get the object (``start`` None: it is lost)."""
        if start is not None:
            self.serving += 1                  # poll hot until the reader is done
            self.served += 1
            self.serving_to.setdefault(requester, []).append(slot)
        self.transport.send(requester, messages.rma_ready(object_id, start, self.rank, slot,
                                                          coordinator))

    def on_rma_done(self, object_id, source, holder, requester):
        self.assigned.pop((object_id, requester), None)
        self._start_copies(object_id, self.trees.done(object_id, source, holder))

    def on_rma_gone(self, object_id, source, requester):
        self.assigned.pop((object_id, requester), None)
        self._start_copies(object_id, self.trees.gone(object_id, source, requester))

    def on_rma_ready(self, object_id, start, source, source_slot, coordinator):
        from mpi4py import MPI
        landing = self.opening.pop(object_id)
        size = landing.obj.size
        if start is None:
            if coordinator is not None:
                self.transport.send(coordinator, messages.rma_done(object_id, source, None,
                                                                   self.rank))
            self._finish(object_id, landing, ok=False)
            return
        target = self.store.writable(self.store.first_page(landing.local_slot), size)
        requests = [self.window.Rget([target[begin:end], MPI.BYTE], source,
                                     target=(start * PAGE + begin, end - begin, MPI.BYTE))
                    for begin, end in chunks(size, RMA_CHUNK) if end > begin]
        self.incoming.append(Incoming(requests, object_id, landing, source, source_slot,
                                      coordinator, rma=True))

    def on_rma_close(self, slot):
        """RMA_CLOSE: a reader's Get from ``slot`` is done."""
        self.store.unpin(slot)
        self.serving -= 1
        for reader, slots in self.serving_to.items():
            if slot in slots:
                slots.remove(slot)
                if not slots:
                    del self.serving_to[reader]
                break

    # ------------------------------------------------------------------ two-sided
    def _start_fetch(self, object_id, obj, local_slot, shared):
        """Post a receive straight into this node's store (``local_slot``, pinned) and ask the
        rank that wrote the object to send its bytes."""
        if self.window is not None:
            self._start_get(object_id, obj, local_slot, shared)
            return
        from mpi4py import MPI
        writer, size = obj.writer, obj.size
        if writer in self.transport.dead:
            self._finish(object_id, Landing(local_slot, obj, shared), ok=False,
                         why=f"rank {writer}, which held it, died")
            return
        start = self.store.first_page(local_slot)
        tag = DATA_TAG_BASE + (next(self._tags) * MAX_CHUNKS) % DATA_TAGS
        target = self.store.writable(start, size)
        requests = [self.comm.Irecv([target[begin:end], MPI.BYTE], writer, tag + index)
                    for index, (begin, end) in enumerate(chunks(size))]
        self.incoming.append(Incoming(requests, object_id, Landing(local_slot, obj, shared)))
        self.transport.send(writer, messages.fetch(obj.slot, size, self.rank, tag))

    def on_fetch(self, slot, size, requester, tag):
        from mpi4py import MPI
        try:
            start = self.store.pin(slot)          # restores it if it was spilled
        except Exception:                      # freed meanwhile: an empty reply says "lost"
            empty = self.store.writable(0, 0)
            requests = [self.comm.Isend([empty, MPI.BYTE], requester, tag + index)
                        for index in range(len(chunks(size)))]
            self.outgoing.append(Outgoing(requests, None, requester))
            return
        source = self.store.writable(start, size)
        requests = [self.comm.Isend([source[begin:end], MPI.BYTE], requester, tag + index)
                    for index, (begin, end) in enumerate(chunks(size))]
        self.outgoing.append(Outgoing(requests, slot, requester))

    def _spin_rma(self):
        """Drive MPI's progress engine in a tight loop for a moment. This MPICH moves a Get's
        bytes in small pieces, one per progress call on each side, so a rank that polls at the
        pace of its message loop (tens of microseconds a turn) caps a Get at 1-2 GB/s; spinning
        here while Gets are in flight lets them run at memory speed (5-6 GB/s measured).
        Between bursts it yields the core: where ranks outnumber cores, two Gets in flight
        took 4 s for 1 GiB without (a Get moves only while both its ranks run at once), 0.3 s
        with."""
        from mpi4py import MPI
        comm, probe = self.comm, MPI.ANY_SOURCE
        deadline = time.perf_counter() + RMA_SPIN
        while time.perf_counter() < deadline:
            for _ in range(64):
                comm.Iprobe(probe, SPIN_TAG)
            os.sched_yield()                   # a Get needs both ends running: on a full
            #                                    host, give the core to a rank that moves one

    def busy(self):
        return bool(self.incoming or self.outgoing or self.awaiting or self.opening
                    or self.serving)

    def progress(self):
        """Advance transfers (lock held); return how many move bytes right now."""
        from mpi4py import MPI
        if self.serving or any(item.rma for item in self.incoming):
            self._spin_rma()
        if self.outgoing:
            still = []
            for item in self.outgoing:
                if MPI.Request.Testall(item.requests):
                    if item.slot is not None:
                        self.store.unpin(item.slot)
                else:
                    still.append(item)
            self.outgoing = still
        if self.incoming:
            still = []
            for item in self.incoming:
                statuses = [MPI.Status() for _ in item.requests]
                if not MPI.Request.Testall(item.requests, statuses):
                    still.append(item)
                    continue
                landing = item.landing
                if not item.rma:
                    ok = (sum(status.Get_count(MPI.BYTE) for status in statuses)
                          == landing.obj.size)
                    self._finish(item.object_id, landing, ok)
                    continue
                # a Get: the data is here
                self.transport.send(item.source, messages.rma_close(item.source_slot))
                self._finish(item.object_id, landing, ok=True)
                if item.coordinator is not None:   # our node may serve the next copies
                    holder = self.node_leaders[self.node_index] if landing.shared else None
                    self.transport.send(item.coordinator, messages.rma_done(
                        item.object_id, item.source, holder, self.rank))
            self.incoming = still
        if self.awaiting:
            for object_id, awaited in list(self.awaiting.items()):
                state = self.store.copy_state(object_id)
                if state == COPY_READY:
                    del self.awaiting[object_id]
                    self._hold(object_id, awaited.copy, shared=True)
                    self._deliver(object_id, awaited.copy)
                elif state == 0:               # the rank copying it failed: try ourselves
                    del self.awaiting[object_id]
                    self._claim(object_id, awaited.obj)
        # Only moving bytes keep this rank polling hot: waiting for a source (a tree may queue
        # us) or for another rank of the node to finish its copy does not burn a core.
        return len(self.incoming) + len(self.outgoing) + self.serving

    def _finish(self, object_id, landing, ok, why=None):
        """The bytes of a copy are in (or not): publish it to the node, or report it lost
        (``why``: the reason given, if not the usual)."""
        if landing.shared:
            self.store.copy_done(object_id, ok)
        else:
            self.store.unpin(landing.local_slot)
            if not ok:
                self.store.free(landing.local_slot)
        if not ok:
            self._deliver(object_id, serialization.lost(object_id, why) if why
                          else serialization.lost(object_id))
            return
        obj = landing.obj
        self.on_transfer(object_id, obj.size, obj.node, self.node_index, landing.started)
        copy = stored(self.node_index, self.rank, landing.local_slot, obj.size, obj.header,
                      obj.parts)
        self._hold(object_id, copy, landing.shared)
        self._deliver(object_id, copy)

    def _deliver(self, object_id, obj):
        for callback in self.waiting.pop(object_id, ()):
            callback(obj)
        self.on_arrival()

    def _hold(self, object_id, copy, shared):
        """Keep a copy (LRU, bounded by a quarter of the store) for this rank's later reads."""
        self.held[object_id] = copy
        if not shared:
            self.private.add(object_id)
        self.held_bytes += copy.size
        while self.held_bytes > self.cache_limit and len(self.held) > 1:
            old_id, old = self.held.popitem(last=False)
            self.held_bytes -= old.size
            self._drop(old_id, old)

    def _drop(self, object_id, copy):
        if object_id in self.private:
            self.private.discard(object_id)
            self.store.free(copy.slot)
        else:
            self.store.release_copy(object_id)


    # ------------------------------------------------------------------ dead ranks
    def on_rank_dead(self, rank, tasks):
        """``rank`` died (lock held): copies it was to send are lost (the next read of the
        object tries again, from wherever it is), copies it was reading are released, a
        copy it was filling for this node is dropped, and a broadcast tree forgets it."""
        why = f"rank {rank}, which held it, died"
        for object_id, landing in list(self.opening.items()):
            if self.node_leaders[landing.obj.node] == rank:
                del self.opening[object_id]
                self._finish(object_id, landing, ok=False, why=why)
        stuck = [item for item in self.incoming
                 if (item.source == rank if item.rma else item.landing.obj.writer == rank)]
        for item in stuck:
            self.incoming.remove(item)         # its requests never complete: dropped
            self._finish(item.object_id, item.landing, ok=False, why=why)
        for item in [item for item in self.outgoing if item.dest == rank]:
            self.outgoing.remove(item)
            if item.slot is not None:
                self.store.unpin(item.slot)
        for slot in self.serving_to.pop(rank, ()):
            self.serving -= 1
            self.store.unpin(slot)
        if self.store is not None:             # (only ranks of its node fill its copies)
            self.store.abandon_copies_of(rank)
        if self.trees is not None:
            self.trees.forget_rank(rank)
            for (object_id, requester), source in list(self.assigned.items()):
                if source == rank:             # a source that died: place its reader again
                    self.on_rma_gone(object_id, source, requester)
                elif requester == rank:        # a reader that died frees its source
                    self.on_rma_done(object_id, source, None, requester)

    def forget(self):
        for object_id, copy in self.held.items():
            self._drop(object_id, copy)
        self.held.clear()
        self.held_bytes = 0
