"""Ownership: the objects and tasks this rank owns, and when an owned object is freed.

Every rank owns the objects it creates (``put``) and the results of the tasks it submits, as
in Ray. An owned object stays in ``objects`` while anything still needs it: a local
``ObjectRef`` or a hold or borrower elsewhere (``refcount.py`` counts those), a task this rank
submitted that takes it as an argument (a *pin*), or a callback waiting for it. When the last
need goes, the object is freed: its record is dropped and, if it lives in a node store, its
slot is released there (directly on this node, by ``FREE`` to the rank that wrote it
elsewhere).

Results arrive as ``RESULT`` (or straight from this rank's own executor) and complete the
task's record: its pins and the holds on refs inside its arguments are released, callbacks
fire, and waiters wake. A generator task's items arrive before, one ``GEN_ITEM`` each: each
gets an id of this rank's and waits in the task's :class:`Stream`, held, until the caller
takes its ref (``access.next_item``). All methods run with the runtime lock held.
"""
import itertools
from collections import defaultdict

from ..wire import messages, serialization
from ..wire.ids import make_id, owner_of
from ..wire.objects import ERROR, STORED, from_wire, nbytes
from . import refcount
from .events import NOT_RECORDING
from .generators import DynamicObjectRefGenerator
from .object_ref import ObjectRef


class TaskRecord:
    """What an owner remembers about a task (or call, or actor construction) it submitted
    until the results arrive."""
    __slots__ = ("spec", "where", "contained", "router", "attempts")

    def __init__(self, spec, where=None, contained=()):
        self.spec = spec
        self.where = where                     # the rank it was sent to (0: the head placed it)
        self.contained = contained             # refs inside its arguments, held until done
        self.router = None                     # what sent it: knows how to cancel it
        self.attempts = 1                      # times it was sent to run


class Stream:
    """The items of a generator task owned here that the caller has not taken yet."""
    __slots__ = ("items", "taken", "dynamic", "limit", "executor")

    def __init__(self, dynamic, limit=None):
        self.items = {}                        # index -> object id (held until taken)
        self.taken = 0                         # items handed to the caller so far
        self.dynamic = dynamic                 # num_returns="dynamic": all kept for the end
        self.limit = limit                     # back-pressure: told to the executor as taken
        self.executor = None                   # the rank whose items came last


SIZES_LOOKED_AT = 5000     # owned objects whose sizes ``describe`` adds up (the rest: scaled)


class Ownership:
    """Collaborators: ``job`` (JobView), this node's ``store``, ``transport``, ``refs``
    (RefTracker) and ``notify()`` (something arrived: wake waiters). Others may ask to hear
    of an owned object's end (:meth:`when_freed`), and listen to every task of this rank
    whose results came back (``finished_listeners``: ``fn(task_id, seconds)``)."""
    events = NOT_RECORDING                  # what this rank records (core/events.py)

    def __init__(self, job, store, transport, refs, notify):
        self.job = job
        self.rank = job.rank
        self.store = store
        self.transport = transport
        self.refs = refs
        self.notify = notify
        self._counter = itertools.count(1)
        self.objects = {}                      # owned object id -> object record
        self.pending = {}                      # owned object id -> task id not finished yet
        self.callbacks = defaultdict(list)     # owned object id -> [fn(obj)] fired on arrival
        self.pins = defaultdict(int)           # owned object id -> submitted tasks using it
        self.tasks = {}                        # task id -> TaskRecord
        self.on_freed = {}                     # owned object id -> fn(object_id) at its end
        self.lineage = {}                      # task id -> [TaskRecord, results alive] of a
                                               # finished task whose stored results live:
                                               # it can run again if their node is lost
        self.made_by = {}                      # owned stored object id -> its task in lineage
        self.finished_listeners = []
        self.streams = {}                      # generator task id -> Stream

    # ------------------------------------------------------------------ ids and objects
    def new_id(self, count=1):
        """``count`` consecutive new ids owned by this rank; return the first."""
        first = next(self._counter)
        for _ in range(count - 1):
            next(self._counter)
        return make_id(self.rank, first)

    def add(self, obj):
        """Own a new object (a put); return its id."""
        object_id = self.new_id()
        self.objects[object_id] = obj
        return object_id

    def describe(self, limit):
        """The owned objects for the dashboard and ``list_objects`` (a load probe: their
        count and bytes, and the first ``limit`` of them as Ray's records)."""
        objects, local, pending = self.objects, self.refs.local, self.pending
        total = 0
        listed = []
        for seen, (object_id, obj) in enumerate(objects.items()):
            if seen == SIZES_LOOKED_AT:        # (a sample: every second, whatever the count)
                total = total * len(objects) // seen
                break
            size = nbytes(obj)
            total += size
            if len(listed) < limit:
                listed.append({"object_id": f"{object_id:016x}", "object_size": size,
                               "rank": self.rank, "task_status": "FINISHED",
                               "reference_type": "LOCAL_REFERENCE" if local.get(object_id)
                               else "USED_BY_PENDING_TASK" if object_id in self.pins
                               else "CAPTURED_IN_OBJECT", "call_site": None})
        for object_id in itertools.islice(pending, max(limit - len(listed), 0)):
            listed.append({"object_id": f"{object_id:016x}", "object_size": None,
                           "rank": self.rank, "task_status": "PENDING",
                           "reference_type": "LOCAL_REFERENCE", "call_site": None})
        return {"owned": (len(objects), total), "objects": listed}

    def when_freed(self, object_id, callback):
        """Call ``callback(object_id)`` when the owned object is freed (an actor's token: its
        last handle is gone)."""
        self.on_freed[object_id] = callback

    def get(self, object_id):
        """The record of an owned object that exists, or None."""
        return self.objects.get(object_id)

    def is_pending(self, object_id):
        return object_id in self.pending

    def when_ready(self, object_id, callback):
        """``callback(obj)`` once an owned object exists (now, if it does; the error record of
        a lost object if it never will)."""
        obj = self.objects.get(object_id)
        if obj is not None:
            callback(obj)
        elif object_id in self.pending:
            self.callbacks[object_id].append(callback)
        else:
            callback(serialization.lost(object_id))

    # ------------------------------------------------------------------ submitted tasks
    def register_task(self, spec, dep_ids):
        """A task (or call, or construction) submitted here: its results pending, the
        arguments this rank owns pinned until it is done. Returns its record."""
        task_id, pending = spec.task_id, self.pending
        for object_id in range(task_id, task_id + spec.num_returns):
            pending[object_id] = task_id
        for object_id in dep_ids:
            if owner_of(object_id) == self.rank:
                self.pins[object_id] += 1
        record = self.tasks[spec.task_id] = TaskRecord(spec)
        self.events.submitted(spec)
        return record

    def record(self, task_id):
        return self.tasks.get(task_id)

    def pending_task(self, object_id):
        """The record of the unfinished task that produces an owned object, or None."""
        task_id = self.pending.get(object_id)
        return None if task_id is None else self.tasks.get(task_id)

    def abandon_task(self, spec):
        """Undo :meth:`register_task` (a named actor that already existed)."""
        for object_id in spec.return_ids():
            self.pending.pop(object_id, None)
        record = self.tasks.pop(spec.task_id, None)
        if record is not None:
            self._unpin(record.spec)
            if record.contained:
                self.refs.release(record.contained)

    def unfinished(self):
        """Ids of the tasks this rank submitted whose results are not back."""
        return set(self.pending.values())

    # ------------------------------------------------------------------ generator tasks
    def open_stream(self, task_id, dynamic, limit=None):
        """A generator task was submitted here: keep its items as they come (``limit``:
        its back-pressure, see ``wire/specs.py``)."""
        self.streams[task_id] = Stream(dynamic, limit)

    def on_item(self, task_id, index, obj, executor, contained):
        """GEN_ITEM: item ``index`` of a generator task (a wire record). A second copy (the
        task ran again after a crash) or an item nobody waits for is dropped."""
        obj = from_wire(obj)
        stream = self.streams.get(task_id)
        unacked = set()
        if stream is None or index < stream.taken or index in stream.items:
            self.discard(obj)
        else:
            object_id = self.add(obj)
            stream.items[index] = object_id
            stream.executor = executor
            self.refs.hold([object_id])        # (until the caller takes it)
            if contained:
                unacked = self.refs.contain(object_id, contained)
        if contained and executor is not None:
            self.refs.took_over((task_id, index), executor, unacked)
        self.notify()

    def item_ready(self, task_id):
        """Whether the next item of a stream is here, or its end."""
        stream = self.streams.get(task_id)
        return (stream is None or stream.taken in stream.items
                or task_id not in self.pending)

    def take_item(self, task_id):
        """The ref of a stream's next item (the caller takes it), or None at its end; at the
        end, an error that ended the task (it was cancelled, it could not start, its process
        died once too often) is the last ref. Call once :meth:`item_ready`."""
        stream = self.streams.get(task_id)
        if stream is None:
            return None
        object_id = stream.items.pop(stream.taken, None)
        if object_id is None:                  # the end
            self.close_stream(task_id)
            end = self.objects.get(task_id)
            if end is not None and end.kind == ERROR:
                return ObjectRef(task_id)
            return None
        stream.taken += 1
        if stream.limit is not None and stream.executor is not None:
            self.transport.send(stream.executor, messages.gen_consumed(task_id, stream.taken))
        ref = ObjectRef(object_id)
        self.refs.process_events()             # (the ref counts before the hold goes)
        self.refs.release([object_id])
        return ref

    def close_stream(self, task_id):
        """Forget a stream (its end was reached, or its generator dropped): items not taken
        are released."""
        stream = self.streams.pop(task_id, None)
        if stream is not None and stream.items:
            self.refs.release(list(stream.items.values()))

    def _end_dynamic(self, task_id, obj):
        """A ``num_returns="dynamic"`` task ended: its return object becomes a
        DynamicObjectRefGenerator of its items' refs (an error stays an error)."""
        stream = self.streams.pop(task_id)
        ids = [stream.items[index] for index in sorted(stream.items)]
        if obj.kind == ERROR:
            self.refs.release(ids)
            return obj
        refs = [ObjectRef(object_id) for object_id in ids]
        with refcount.capture("contained") as contained:
            encoded = serialization.encode(DynamicObjectRefGenerator(refs))
        self.refs.process_events()
        self.refs.contain(task_id, contained)
        self.refs.release(ids)
        return encoded

    def on_result(self, task_id, results, seconds, executor, contained):
        """RESULT: a task's results (object records as plain tuples, from the wire)."""
        self.deliver(task_id, results, seconds, executor, contained, wire=True)

    def deliver(self, task_id, results, seconds=None, executor=None, contained=None,
                wire=False):
        """A task's results are here: keep the ones still wanted, complete the task.
        ``wire``: the records are plain tuples still (``objects.from_wire``)."""
        refs = self.refs
        if refs.events:                        # refs created since the last poll count too
            refs.process_events()
        record = self.tasks.pop(task_id, None)
        unacked = set()
        local, pending = refs.local, self.pending
        kept = None                            # its stored results kept here (lineage)
        for object_id, obj in results:
            if pending.pop(object_id, None) is None:
                continue                       # stale (an old session) or already cancelled
            if wire:
                obj = from_wire(obj)
            if object_id in self.streams and self.streams[object_id].dynamic:
                obj = self._end_dynamic(object_id, obj)
            if (local.get(object_id) or refs.in_use(object_id) or object_id in self.callbacks
                    or object_id in self.pins):
                self.objects[object_id] = obj
                if contained and object_id in contained:
                    unacked |= refs.contain(object_id, contained[object_id])
                if obj.kind == STORED:
                    kept = [object_id] if kept is None else kept + [object_id]
            else:
                self.discard(obj)              # every ref was dropped before it was done
                if self.on_freed:
                    callback = self.on_freed.pop(object_id, None)
                    if callback is not None:
                        callback(object_id)
            self._fire(object_id, obj)
        if contained and executor is not None:
            refs.took_over(task_id, executor, unacked)
        if record is not None:
            self.events.finished(record.spec, results)
            if kept and record.spec.actor_id is None:
                self.lineage[task_id] = [record, len(kept)]   # its arguments stay pinned
                for object_id in kept:
                    self.made_by[object_id] = task_id
            else:
                self._release_arguments(record)
        for listener in self.finished_listeners:
            listener(task_id, seconds)

    def _release_arguments(self, record):
        self._unpin(record.spec)
        if record.contained:
            self.refs.release(record.contained)

    def reopen(self, object_id, node):
        """A stored object lost with ``node``: make the objects its task stored there
        pending again and return the task's record, to run it again (lineage
        reconstruction, as in Ray); None when no task of ours can make it again."""
        task_id = self.made_by.get(object_id)
        if task_id is None:
            return None
        record, _ = self.lineage.pop(task_id)
        for result_id in record.spec.return_ids():
            if self.made_by.pop(result_id, None) is None:
                continue
            obj = self.objects.get(result_id)
            if obj is not None and obj.kind == STORED and obj.node == node:
                del self.objects[result_id]
                self.pending[result_id] = task_id
        self.tasks[task_id] = record
        return record

    def replace(self, object_id, obj):
        """An owned object's record is now ``obj`` (an error: it is lost for good)."""
        self.made_by.pop(object_id, None)
        self.objects[object_id] = obj
        self._fire(object_id, obj)

    def _fire(self, object_id, obj):
        if self.callbacks:
            callbacks = self.callbacks.pop(object_id, None)
            if callbacks:
                for callback in callbacks:
                    callback(obj)
        self.notify()

    def _unpin(self, spec):
        for object_id in spec.deps:
            if owner_of(object_id) == self.rank and object_id in self.pins:
                self.pins[object_id] -= 1
                if self.pins[object_id] <= 0:
                    del self.pins[object_id]
                    self.maybe_free(object_id)

    # ------------------------------------------------------------------ freeing
    def maybe_free(self, object_id):
        """Free an owned object if nothing needs it any more."""
        if (not self.pins.get(object_id) and object_id not in self.pending
                and not self.callbacks.get(object_id) and not self.refs.in_use(object_id)):
            obj = self.objects.pop(object_id, None)
            if obj is not None:
                if obj.kind == STORED:
                    self.discard(obj)
                    if self.made_by:
                        self._forget_lineage(object_id)
                self.refs.freed(object_id)     # release the refs its pickle held
            if self.on_freed:
                callback = self.on_freed.pop(object_id, None)
                if callback is not None:
                    callback(object_id)

    def _forget_lineage(self, object_id):
        """A stored result is freed; once all of them are, its task's arguments go too."""
        task_id = self.made_by.pop(object_id, None)
        if task_id is None:
            return
        entry = self.lineage[task_id]
        entry[1] -= 1
        if entry[1] <= 0:
            del self.lineage[task_id]
            self._release_arguments(entry[0])

    def discard(self, obj):
        """An object nobody needs: release its primary copy in its node's store, if any."""
        if obj.kind != STORED:
            return
        if obj.node == self.job.node_index and self.store is not None:
            self.store.free(obj.slot)
        else:
            self.transport.send(obj.writer, messages.free(obj.slot))

    def free_objects(self, object_ids):
        """``internal_api.free``: free these objects now (an owner elsewhere is asked)."""
        for object_id in object_ids:
            owner = owner_of(object_id)
            if owner == self.rank:
                self.on_free_object(object_id)
            elif 0 <= owner < self.job.size:
                self.transport.send(owner, messages.free_object(object_id))

    def on_free_object(self, object_id):
        """FREE_OBJECT: drop an owned object's value now, whoever still refers to it; its
        refs then get ObjectFreedError (an object still being made is left alone)."""
        obj = self.objects.get(object_id)
        if obj is None:
            return
        self.discard(obj)
        self.made_by.pop(object_id, None)
        self.objects[object_id] = serialization.freed(object_id)
        self.refs.process_events()             # (refs made since count before it may go)
        self.refs.unescape(object_id)
        self.maybe_free(object_id)

    def on_free(self, slot):
        """FREE: an object this rank wrote into its node's store is dead."""
        self.store.free(slot)

    def forget(self):
        """A new session: the old session's objects and tasks are gone; whoever waits for one
        gets ObjectLostError."""
        failed = list(self.callbacks.items())
        for obj in self.objects.values():
            self.discard(obj)
        self.objects.clear()
        self.pending.clear()
        self.callbacks.clear()
        self.pins.clear()
        self.tasks.clear()
        self.on_freed.clear()
        self.lineage.clear()
        self.made_by.clear()
        self.streams.clear()
        for object_id, callbacks in failed:
            for callback in callbacks:
                callback(serialization.lost(object_id))
