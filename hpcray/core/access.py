"""Object access: ``get``, ``wait``, futures, and finding an object wherever it is.

An object this rank owns is read where it lands (``ownership.py``). An object owned elsewhere
is asked of its owner once (``GET_OBJECT``; the owner answers ``OBJECT`` when it exists) and
kept in a bounded cache of fetched objects, as Ray's ``fetch_local`` does. A stored object
that lives on another node is first copied into this node's store (``store/copies.py``), so
that every read is a zero-copy read of local memory.

Refs found inside a value (a list of refs returned by a task...) make this rank a borrower:
``get`` returns only once their owners acknowledged it (``refcount.py``). All methods but
:meth:`get`, :meth:`wait`, :meth:`future`, :meth:`await_borrows` and :meth:`borrow` run with
the runtime lock held; those take it themselves and may wait.
"""
import time
from collections import OrderedDict, defaultdict, deque
from concurrent.futures import Future

from ..exceptions import GetTimeoutError, RuntimeBrokenError
from ..wire import messages, serialization
from ..wire.ids import OWNER_SHIFT, made_in
from ..wire.objects import ERROR, STORED, from_wire, nbytes
from . import refcount
from .events import NOT_RECORDING
from .object_ref import rebuild

MAX_FETCHED = 4096        # objects owned elsewhere kept here at most (also bounded in bytes)


class ObjectAccess:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``transport``, ``progress``
    (the broken state, background polling for futures), ``waiting``, ``ownership``,
    ``refs``, ``copies`` (objects of other nodes), this node's ``store``, and
    ``cache_limit``, the bytes of fetched objects kept."""
    events = NOT_RECORDING                  # what this rank records (core/events.py)

    def __init__(self, lock, job, transport, progress, waiting, ownership, refs, copies, store,
                 cache_limit):
        self.lock = lock
        self.job = job
        self.rank = job.rank
        self.transport = transport
        self.progress = progress
        self.waiting = waiting
        self.ownership = ownership
        self.refs = refs
        self.copies = copies
        self.store = store
        self.cache_limit = cache_limit
        self.fetching = set()                  # ids asked of their owners
        self.callbacks = defaultdict(list)     # id owned elsewhere -> [fn(obj)] on arrival
        self.fetched = OrderedDict()           # id owned elsewhere -> its object (LRU)
        self.fetched_bytes = 0
        self.futures = set()                   # futures not completed yet
        self.on_lost = None                    # fn(object_id, node): an owned object's
                                               # copy was lost with node (late-bound)
        progress.broken_listeners.append(self._fail_futures)

    # ------------------------------------------------------------------ finding objects
    def lookup(self, object_id, callback, local=True):
        """Call ``callback(obj)`` once the object is available here (lock held).

        With ``local``, an object stored on another node is first copied into this node's
        store, so that the callback gets something it can read in place.
        """
        if local:
            callback = self.copies.localizing(object_id, callback)
        callback = self._unless_lost(object_id, callback)
        if object_id >> OWNER_SHIFT == self.rank:
            self.ownership.when_ready(object_id, callback)
            return
        obj = self.fetched.get(object_id)
        if obj is not None:
            callback(obj)
            return
        owner = object_id >> OWNER_SHIFT
        if owner in self.transport.dead:
            callback(serialization.owner_died(object_id, owner, self.job.host_of[owner]))
            return
        if not made_in(object_id, self.job.size):
            # No rank of this job made this id (an ObjectRef built from bytes): the object
            # does not exist, and its "owner" is no rank to ask.
            callback(serialization.lost(object_id, f"no rank of this job ({self.job.size} "
                                        f"ranks) made this id: an ObjectRef built from bytes "
                                        f"that name no object?"))
            return
        self.callbacks[object_id].append(callback)
        if object_id not in self.fetching:
            self.fetching.add(object_id)
            self.transport.send(object_id >> OWNER_SHIFT,
                                messages.get_object(object_id, self.rank, None))

    def _unless_lost(self, object_id, callback, tries=3):
        """Wrap ``callback``: a record of an object stored on a node whose ranks are all
        dead is not delivered; the object is asked again (its owner makes it again)."""
        def deliver(obj):
            if obj.kind == STORED and tries and self.node_lost(obj.node):
                self.recover(object_id, obj.node, self._unless_lost(object_id, callback,
                                                                     tries - 1))
                return
            callback(obj)
        return deliver

    def node_lost(self, node):
        """Whether every rank of ``node`` is dead (its store with them)."""
        dead = self.transport.dead
        return bool(dead) and all(rank in dead for rank in self.job.ranks_on(node))

    def recover(self, object_id, node, callback):
        """``callback(obj)`` with the object made again after its copy on ``node`` was lost
        (lock held): the owner runs its task again (``on_lost``), others ask the owner."""
        self.fetched.pop(object_id, None)
        owner = object_id >> OWNER_SHIFT
        if owner == self.rank:
            self.on_lost(object_id, node)
            self.ownership.when_ready(object_id, callback)
        elif owner in self.transport.dead:
            callback(serialization.owner_died(object_id, owner, self.job.host_of[owner]))
        else:
            self.callbacks[object_id].append(callback)
            if object_id not in self.fetching:
                self.fetching.add(object_id)
                self.transport.send(owner, messages.get_object(object_id, self.rank, node))

    def on_get_object(self, object_id, requester, lost_node=None):
        """GET_OBJECT: send an object this rank owns once it exists (made again first if
        the requester found its copy lost with ``lost_node``)."""
        # No need to mark it escaped: a rank learns an id either from a pickled ref (marked
        # then) or as a task's argument (pinned until the task is done).
        if lost_node is not None:
            self.on_lost(object_id, lost_node)
        send = self.transport.send
        self.lookup(object_id, lambda obj: send(requester, messages.object_(object_id, obj)),
                    local=False)

    def on_object(self, object_id, obj):
        """OBJECT: an object asked of its owner."""
        obj = from_wire(obj)
        self.fetching.discard(object_id)
        if obj.kind != ERROR:                  # the next get of it asks nobody (the record
            self._cache(object_id, obj)        # of the owner's copy, never of a local one)
        callbacks = self.callbacks.pop(object_id, None)
        if callbacks:
            for callback in callbacks:
                callback(obj)
        self.waiting.notify()

    def cached(self, object_id):
        """The object of an id owned elsewhere, if it was fetched here, else None."""
        return self.fetched.get(object_id)

    def _cache(self, object_id, obj):
        """Keep a fetched copy of an object owned elsewhere (bounded, least recent out)."""
        fetched = self.fetched
        if object_id in fetched:
            return
        fetched[object_id] = obj
        self.fetched_bytes += self._held_bytes(obj)
        while len(fetched) > MAX_FETCHED or self.fetched_bytes > self.cache_limit:
            _, old = fetched.popitem(last=False)
            self.fetched_bytes -= self._held_bytes(old)

    @staticmethod
    def _held_bytes(obj):
        """Memory a cached record holds: none for a stored object (its room is the store's,
        and a copy's is the copies' to reuse)."""
        return 0 if obj.kind == STORED else nbytes(obj)

    # ------------------------------------------------------------------ get
    def get(self, object_ids, timeout=None):
        """The values of ``object_ids``, waiting for them (lock not held).

        Raises:
            GetTimeoutError: not all were ready within ``timeout`` seconds.
            TaskError (and the error of a failed task, lost object...): as ``get`` documents.
        """
        objects = self.get_objects(object_ids, timeout)
        with refcount.capture("borrowed") as borrowed:
            values = [serialization.materialize(obj, self.store) for obj in objects]
        self.await_borrows(borrowed)           # refs inside the values: register first
        return values

    def get_objects(self, object_ids, timeout=None):
        """The object records of ``object_ids``, waiting for them (bounded by timeout).

        Objects this rank owns are read where they land (no callback per object: a get of
        thousands of task results costs a scan, amortized O(1) per object as results arrive);
        objects owned elsewhere are fetched once each.
        """
        found = {}
        rank = self.rank
        ownership = self.ownership
        owned, pending = ownership.objects, ownership.pending
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        remaining = deque()
        with self.lock:
            if self.progress.broken is not None:
                self.progress.check()
            for object_id in object_ids:
                if object_id >> OWNER_SHIFT == rank:
                    obj = owned.get(object_id)
                    if obj is not None:
                        found[object_id] = obj
                    elif object_id in pending:
                        remaining.append(object_id)
                    else:
                        found[object_id] = serialization.lost(object_id)
                elif object_id not in found:
                    obj = self.fetched.get(object_id)
                    if obj is not None:
                        found[object_id] = obj
                    else:
                        remaining.append(object_id)
                        self.lookup(object_id, lambda obj, oid=object_id: found.__setitem__(oid, obj))
            self.transport.flush()

        def done():
            while remaining:
                object_id = remaining[0]
                if object_id in found:
                    remaining.popleft()
                elif object_id >> OWNER_SHIFT == rank and object_id not in pending:
                    found[object_id] = owned.get(object_id) or serialization.lost(object_id)
                    remaining.popleft()
                else:
                    return False
            return True
        if remaining:
            started = time.time()
            report = None
            if len(object_ids) > 1:            # (the driver's progress line, if it lasts)
                report = ("get", len(object_ids), lambda: len(object_ids) - sum(
                    1 for oid in remaining if oid not in found
                    and (oid >> OWNER_SHIFT != rank or oid in pending)))
            arrived = self.waiting.wait_until(done, deadline, report)
            if self.events.enabled:            # (no lock taken for nothing when it is off)
                with self.lock:
                    self.events.waited(len(object_ids), started)
        if remaining and not arrived:
            raise GetTimeoutError(
                f"get timed out after {timeout} s: {len(set(remaining))} of "
                f"{len(set(object_ids))} objects not ready")
        for _ in range(3):                     # copies lost with their node: made again
            lost = {oid: obj.node for oid, obj in found.items()
                    if obj.kind == STORED and self.node_lost(obj.node)}
            if not lost:
                break
            with self.lock:
                for oid, lost_node in lost.items():
                    del found[oid]
                    self.recover(oid, lost_node, lambda obj, oid=oid: found.__setitem__(oid, obj))
                self.transport.flush()
            if not self.waiting.wait_until(lambda: all(oid in found for oid in lost), deadline):
                raise GetTimeoutError(f"get timed out after {timeout} s: {len(lost)} objects "
                                      f"lost with their node are being made again")
        node = self.job.node_index
        foreign = [oid for oid, obj in found.items() if obj.kind == STORED and obj.node != node]
        if foreign:                            # stored on another node: copy here first
            local = {}
            with self.lock:
                for oid in foreign:
                    self.copies.localizing(oid, lambda obj, oid=oid: local.__setitem__(oid, obj))(found[oid])
                self.transport.flush()
            if not self.waiting.wait_until(lambda: len(local) == len(foreign), deadline):
                raise GetTimeoutError(f"get timed out after {timeout} s copying "
                                      f"{len(foreign) - len(local)} objects from other nodes")
            found.update(local)
        return [found[object_id] for object_id in object_ids]

    # ------------------------------------------------------------------ wait
    def _is_ready(self, object_id):
        if object_id >> OWNER_SHIFT == self.rank:
            return not self.ownership.is_pending(object_id)
        return object_id in self.fetched

    def wait(self, object_ids, num_returns, timeout, streams=()):
        """Object ids among ``object_ids`` that are ready, waiting until ``num_returns`` are
        (lock not held). ``streams``: ids of generator tasks owned here among them, ready
        when their next item (or their end) is.

        Readiness of owned objects is local state; objects owned elsewhere are fetched (once
        each) into the cache. The ready set is only recomputed when something arrived, so
        waiting on many refs stays cheap.
        """
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        waiting = self.waiting
        state = {"seen": -1, "ready": set()}
        item_ready = self.ownership.item_ready

        def done():
            if state["seen"] != waiting.arrivals:
                state["seen"] = waiting.arrivals
                state["ready"] = {oid for oid in object_ids if (
                    item_ready(oid) if oid in streams else self._is_ready(oid))}
            return len(state["ready"]) >= num_returns
        with self.lock:
            self.progress.check()
            if not done():
                for object_id in object_ids:
                    if object_id >> OWNER_SHIFT != self.rank and object_id not in self.fetched:
                        self.lookup(object_id, lambda obj, oid=object_id: self._cache(oid, obj))
                self.transport.flush()
        if not done():
            report = None
            if num_returns > 1:                # (the driver's progress line, if it lasts)
                report = ("wait", len(object_ids), lambda: len(state["ready"]))
            waiting.wait_until(done, deadline, report)
        with self.lock:
            state["seen"] = -1
            done()
        return state["ready"]

    # ------------------------------------------------------------------ generator streams
    def next_item(self, task_id, timeout=None):
        """The ref of the next item of a generator task owned here, waiting for it; None at
        the end of its stream (lock not held).

        Raises:
            GetTimeoutError: no item (nor the end) came within ``timeout`` seconds.
        """
        ownership = self.ownership
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self.lock:
            self.progress.check()
        if not self.waiting.wait_until(lambda: ownership.item_ready(task_id), deadline):
            raise GetTimeoutError(f"no item of the generator came within {timeout} s")
        with self.lock:
            return ownership.take_item(task_id)

    def item_ready(self, task_id):
        with self.lock:
            return self.ownership.item_ready(task_id)

    def stream_ended(self, task_id):
        """Whether every item of the generator task was handed out and it is over."""
        with self.lock:
            return task_id not in self.ownership.streams

    # ------------------------------------------------------------------ futures
    def future(self, ref):
        """A Future of the ref's value (lock not held). Nobody waiting on it polls MPI, so
        while futures are outstanding the background thread polls often."""
        future = Future()
        progress = self.progress

        def complete(obj):
            if future not in self.futures:
                return                         # failed already (the runtime broke)
            self.futures.discard(future)
            progress.futures_pending -= 1
            if future.cancelled():             # e.g. asyncio.wait_for timed out on it
                return
            try:
                with refcount.capture("borrowed") as borrowed:
                    value = serialization.materialize(obj, self.store)
                if borrowed:
                    self.refs.register(borrowed)   # in a handler: no wait for the ACK
            except BaseException as error:
                if not future.cancelled():
                    future.set_exception(error)
            else:
                if not future.cancelled():
                    future.set_result(value)
        with self.lock:
            progress.check()
            self.futures.add(future)
            progress.futures_pending += 1
            self.lookup(ref.id, complete)
            self.transport.flush()
        return future

    def _fail_futures(self, reason):
        futures, self.futures = self.futures, set()
        self.progress.futures_pending -= len(futures)
        for future in futures:
            if not future.done():
                future.set_exception(RuntimeBrokenError(reason))

    # ------------------------------------------------------------------ borrowing
    def await_borrows(self, ids):
        """Register as borrower of the foreign refs among ``ids`` and wait for the owners'
        ACKs (the value they came in may go away right after). Lock not held."""
        if not ids:
            return
        with self.lock:
            pending = self.refs.register(ids)
            self.transport.flush()
        if pending:
            refs = self.refs
            self.waiting.wait_until(lambda: not refs.pending_acks(pending))

    def borrow(self, object_id):
        """A new ref to an object owned elsewhere, registered with its owner (an actor's
        token described by the head). Lock not held."""
        with refcount.capture("borrowed") as borrowed:
            ref = rebuild(object_id)
        self.await_borrows(borrowed)
        return ref

    def on_rank_dead(self, rank, tasks):
        """``rank`` died: whoever waits for an object it owned gets OwnerDiedError, and so
        does whoever asks for one later (cached records of its objects are dropped)."""
        host = self.job.host_of[rank]
        for object_id in [oid for oid in self.fetched if oid >> OWNER_SHIFT == rank]:
            self.fetched_bytes -= self._held_bytes(self.fetched.pop(object_id))
        for object_id in [oid for oid in self.callbacks if oid >> OWNER_SHIFT == rank]:
            self.fetching.discard(object_id)
            error = serialization.owner_died(object_id, rank, host)
            for callback in self.callbacks.pop(object_id):
                callback(error)
        self.waiting.notify()

    def forget(self):
        """A new session: whoever waits for an object of the old one gets ObjectLostError."""
        failed = list(self.callbacks.items())
        self.fetching.clear()
        self.callbacks.clear()
        self.fetched.clear()
        self.fetched_bytes = 0
        for object_id, callbacks in failed:
            for callback in callbacks:
                callback(serialization.lost(object_id))
