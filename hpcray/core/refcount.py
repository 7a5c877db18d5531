"""Distributed reference counting: who may still use an object, anywhere in the job.

An owner frees an object when no local ``ObjectRef`` instance, no task pin, no *hold* and no
*borrower* is left (the pins and the freeing are ``ownership.py``'s; the counting is here):

* every rank counts its instances of every id (``ObjectRef.__init__``/``__del__``);
* a rank that gets instances of an id it does not own (unpickled from a value it read, from a
  task's arguments) is a borrower: it sends ``BORROW`` to the owner and waits for the ``ACK``
  before the value they came in can go away (before ``get`` returns, before the task runs);
  when its last instance goes, it sends ``UNBORROW``;
* an object whose pickle contains refs *holds* them while it lives (as owner, a local count;
  as borrower, one more reason to stay registered); a task holds the refs inside its
  arguments until its result is back;
* a task result that contains refs: the executor holds them until the result's owner,
  registered as borrower where needed, sends ``HANDOFF``.

MPI keeps the messages between two ranks in order, and each release happens only after the
registrations it depends on were acknowledged, so no owner frees what someone still reads.
Refs pickled outside these paths (the user's own ``pickle.dumps``) make the object *escaped*:
it is kept until the session ends.
"""
import threading
from collections import defaultdict, deque

from ..wire import messages
from ..wire.ids import OWNER_SHIFT

_capture = threading.local()


class capture:
    """Collect the ids of refs pickled (``"contained"``) or unpickled (``"borrowed"``) by this
    thread inside the ``with`` block."""

    def __init__(self, kind):
        self.kind = kind

    def __enter__(self):
        self.previous = getattr(_capture, self.kind, None)
        self.ids = []
        setattr(_capture, self.kind, self.ids)
        return self.ids

    def __exit__(self, *exc):
        setattr(_capture, self.kind, self.previous)


def pickled(object_id):
    """An ObjectRef is being pickled: a tracked path collects it, otherwise it escapes."""
    ids = getattr(_capture, "contained", None)
    if ids is not None:
        ids.append(object_id)
        return False
    return True


def unpickled(object_id):
    ids = getattr(_capture, "borrowed", None)
    if ids is not None:
        ids.append(object_id)


class RefTracker:
    """This rank's side of the protocol (all methods run with the runtime lock held, but
    :meth:`note` and :meth:`note_escape`, which ``ObjectRef`` calls from anywhere).

    Collaborators: ``send(rank, message)``; ``on_unused(object_id)``, called when nothing
    here counts an owned object any more (the owner may free it); ``acked()``, called when
    a registration is acknowledged (it wakes whoever waits for it).
    """

    def __init__(self, rank, size, send, on_unused, acked):
        self.rank = rank
        self.size = size
        self.send = send
        self.on_unused = on_unused
        self.acked = acked
        self.events = deque()                # (object_id, +1 / -1 / 0: escaped) from ObjectRef
        self.local = defaultdict(int)        # owned id -> ObjectRef instances here
        self.escaped = set()                 # owned ids pickled outside a tracked path
        self.borrowed = defaultdict(int)     # foreign id -> instances here + holds here
        self.registered = set()              # foreign ids this rank is a borrower of
        self.unacked = set()                 # BORROWs sent, ACK not back yet
        self.borrowers = defaultdict(set)    # owned id -> ranks borrowing it
        self.holds = defaultdict(int)        # owned id -> holds by containers and tasks
        self.contains = {}                   # owned object id -> ids its pickle contains
        self.result_holds = {}               # task id -> ids held until the owner's HANDOFF
        self.handoffs = {}                   # task id -> [executor rank, ids awaiting ACK]

    # ------------------------------------------------------------------ counting
    def note(self, object_id, delta):
        """An ObjectRef instance of ``object_id`` was made (+1) or dropped (-1) in this process
        (any thread, no lock: only queued; :meth:`process_events` applies it)."""
        self.events.append((object_id, delta))

    def note_escape(self, object_id):
        """A ref was pickled outside the tracked paths: if owned here, never free it."""
        if object_id >> OWNER_SHIFT == self.rank:
            self.events.append((object_id, 0))

    def process_events(self):
        """Apply the queued counts (lock held)."""
        events, local, rank = self.events, self.local, self.rank
        while events:
            object_id, delta = events.popleft()
            if object_id >> OWNER_SHIFT != rank:
                self.count(object_id, delta)  # a borrowed ref
                continue
            if delta == 0:
                self.escaped.add(object_id)
                continue
            count = local[object_id] + delta
            if count > 0:
                local[object_id] = count
            else:
                del local[object_id]
                self.on_unused(object_id)

    def escape(self, object_id):
        """Keep an owned object for the whole session (a detached actor's token)."""
        self.escaped.add(object_id)

    def unescape(self, object_id):
        """The escaped object was freed on purpose: count it as any other from now on."""
        self.escaped.discard(object_id)

    def in_use(self, object_id):
        """Whether anything counted here still needs an owned object: a local ObjectRef, an
        escape, a hold, a borrower."""
        return bool(self.local.get(object_id) or object_id in self.escaped
                    or self.holds.get(object_id) or self.borrowers.get(object_id))

    def count(self, object_id, delta):
        """A change of this rank's instances (or holds) of a foreign id."""
        count = self.borrowed[object_id] + delta
        if count > 0:
            self.borrowed[object_id] = count
            return
        del self.borrowed[object_id]
        if object_id in self.registered:
            self.registered.discard(object_id)
            self.send(object_id >> OWNER_SHIFT, messages.unborrow(object_id, self.rank))

    # ------------------------------------------------------------------ borrowing
    def register(self, ids):
        """Become a borrower of the foreign ids among ``ids`` that still have instances here;
        return those whose ACK is still to come."""
        self.process_events()
        rank = self.rank
        for object_id in set(ids):
            owner = object_id >> OWNER_SHIFT
            if owner == rank or object_id in self.registered or not self.borrowed.get(object_id):
                continue
            if owner >= self.size:             # an id no rank made (ObjectRef from bytes):
                continue                       # no owner to register with
            self.registered.add(object_id)
            self.unacked.add(object_id)
            self.send(owner, messages.borrow(object_id, rank))
        return {object_id for object_id in ids if object_id in self.unacked}

    def pending_acks(self, ids):
        """Those of ``ids`` whose registration is not acknowledged yet."""
        return ids & self.unacked

    def on_borrow(self, object_id, rank):
        self.borrowers[object_id].add(rank)
        self.send(rank, messages.ack(object_id))

    def on_ack(self, object_id):
        self.unacked.discard(object_id)
        for task_id, handoff in list(self.handoffs.items()):
            handoff.waiting.discard(object_id)
            if not handoff.waiting:
                del self.handoffs[task_id]
                self.send(handoff.executor, messages.handoff(task_id))
        self.acked()

    def on_unborrow(self, object_id, rank):
        borrowers = self.borrowers.get(object_id)
        if borrowers is not None:
            borrowers.discard(rank)
            if not borrowers:
                del self.borrowers[object_id]
                self.on_unused(object_id)

    # ------------------------------------------------------------------ holds
    def hold(self, ids):
        """Hold ``ids`` (a container or a task needs them); return foreign ones not yet ACKed."""
        rank = self.rank
        for object_id in ids:
            if object_id >> OWNER_SHIFT == rank:
                self.holds[object_id] += 1
            else:
                self.borrowed[object_id] += 1
        return self.register(ids)

    def release(self, ids):
        rank = self.rank
        for object_id in ids:
            if object_id >> OWNER_SHIFT == rank:
                count = self.holds[object_id] - 1
                if count > 0:
                    self.holds[object_id] = count
                else:
                    self.holds.pop(object_id, None)
                    self.on_unused(object_id)
            else:
                self.count(object_id, -1)

    def contain(self, object_id, ids):
        """An owned object's pickle contains ``ids``: hold them while it lives."""
        if ids:
            self.contains[object_id] = ids
            return self.hold(ids)
        return set()

    def freed(self, object_id):
        ids = self.contains.pop(object_id, None)
        if ids:
            self.release(ids)

    # ------------------------------------------------------------------ task results
    def result_held(self, task_id, ids):
        """Executor: keep the refs inside a task's results until the owner takes over."""
        if ids:
            self.result_holds[task_id] = ids
            self.hold(ids)

    def took_over(self, task_id, executor, pending):
        """Owner: tell the executor it may let go, once our own registrations are ACKed."""
        if pending:
            self.handoffs[task_id] = Handoff(executor, set(pending))
        else:
            self.send(executor, messages.handoff(task_id))

    def on_handoff(self, task_id):
        ids = self.result_holds.pop(task_id, None)
        if ids:
            self.release(ids)

    def on_rank_dead(self, rank, tasks):
        """``rank`` died: it borrows nothing any more (owned objects it borrowed may be
        freed), its objects need no registration and no hand-off, and the refs held for
        the results of its tasks are released."""
        for object_id in [oid for oid, ranks in self.borrowers.items() if rank in ranks]:
            self.on_unborrow(object_id, rank)
        owned_there = {oid for oid in self.registered | self.unacked
                       if oid >> OWNER_SHIFT == rank}
        self.registered -= owned_there
        self.unacked -= owned_there
        for task_id, handoff in list(self.handoffs.items()):
            handoff.waiting -= owned_there
            if handoff.executor == rank:
                del self.handoffs[task_id]
            elif not handoff.waiting:
                del self.handoffs[task_id]
                self.send(handoff.executor, messages.handoff(task_id))
        for task_id in [tid for tid in self.result_holds if tid >> OWNER_SHIFT == rank]:
            self.on_handoff(task_id)           # its owner will never take them over
        self.acked()

    def forget(self):
        """A new session: every count of the old one is void."""
        events, local = self.events, self.local
        self.__init__(self.rank, self.size, self.send, self.on_unused, self.acked)
        self.events, self.local = events, local   # live ObjectRefs still count themselves


class Handoff:
    """An owner's promise to release a task's executor once its own borrower registrations
    of the refs inside the results are acknowledged."""
    __slots__ = ("executor", "waiting")

    def __init__(self, executor, waiting):
        self.executor = executor
        self.waiting = waiting               # ids whose ACK is still to come
