"""A worker process's runtime: what the public API talks to inside a task or an actor.

The public API asks ``session.runtime()`` for the runtime's roles (``access``, ``submitter``,
``client``, ``requests``, ``job``...); in a worker process that is a :class:`Link`, whose
roles turn each call into a request to the rank (``CALL``), answered by ``REPLY``. Values
never take a detour: stored objects are read in place from the node's store (the worker
inherited its mapping) and large values are written there once (the rank only hands out
the room, ``alloc``).

Reading the socket: whichever thread needs a message reads it (no reader thread, no
hand-off on the hot path); a thread whose answer another thread reads waits on its own event
(leader and followers). A task's own thread reads its answers itself.

References: the rank holds, on the worker's behalf, every ref the worker got from it (a
count per id); the worker counts what it received and says ``DROP (id, count)`` when its
last instance is gone. Refs the worker finds inside values it unpickled (arguments, ``get``)
are reported first (``refs_in``: the rank holds them and registers as borrower).
"""
import itertools
import os
import pickle
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import Future

import numpy as np

from ..core import current, metrics, output, refcount
from ..exceptions import GetTimeoutError, ObjectStoreFullError, SerializationError
from ..store.node_store import PAGE, StoreBuffer, layout
from ..wire import serialization
from ..wire.objects import STORED, from_wire
from . import protocol

TIMED_OUT = object()


class Slot:
    """What a thread waits for: an answer (``value``) or work. The event that wakes it is
    made only if the thread has to sleep (most often it reads its own answer)."""
    __slots__ = ("done", "value", "event")

    def __init__(self):
        self.done = False
        self.value = None
        self.event = None

    def complete(self, value):
        self.value = value
        self.done = True
        event = self.event                     # (made before its thread checks done)
        if event is not None:
            event.set()


class _Memory:
    """Writable bytes at an address (room the rank gave for a new object)."""
    __slots__ = ("__array_interface__",)

    def __init__(self, address, nbytes):
        self.__array_interface__ = {"data": (address, False), "shape": (nbytes,),
                                    "typestr": "|u1", "version": 3}


class WorkerStore:
    """The node's store as a worker sees it: the duck ``serialization`` writes to and reads
    from.

    Pins are the rank's: it pins a stored object each time it sends its record, and the
    worker gives them back (``UNPIN``) once nothing here reads the slot any more: no live
    view of it, no record of it being turned into a value or held by a task's arguments
    (``busy``), no entry of the get cache keeping it (``kept``). View finalizers only queue
    the slot (``dead_views``: they may run inside any bytecode, so they take no lock); the
    sending thread settles the count (:meth:`settle`)."""

    def __init__(self, link, base, capacity, node_index):
        self.link = link
        self.base = base
        self.node_index = node_index
        self.data = np.asarray(StoreBuffer(base, capacity, None))   # the whole store
        self.starts = {}                       # slot -> first page, given with its pins
        self.local = threading.local()         # .written: slots this thread filled
        self.ledger = threading.Lock()
        self.given = defaultdict(int)          # slot -> pins the rank gave, not given back
        self.views = defaultdict(int)          # slot -> live views
        self.busy = defaultdict(int)           # slot -> records being read or held as args
        self.kept = defaultdict(int)           # slot -> get-cache entries keeping it
        self.dead_views = deque()

    def pin(self, slot, count=1):
        return self.starts[slot]               # pinned by the rank when it sent the record

    def view(self, slot, start, offset, nbytes):
        with self.ledger:
            self.views[slot] += 1
        dead_views = self.dead_views
        return np.asarray(StoreBuffer(self.base + start * PAGE + offset, nbytes,
                                      lambda: dead_views.append(slot)))

    def receive(self, raw, start):
        """The object of a record the rank sent; a stored one's pins are counted here, and
        the slot is busy until :meth:`release`."""
        obj = from_wire(raw)
        if obj.kind == STORED:
            slot = obj.slot
            with self.ledger:
                if start is not None:
                    self.starts[slot] = start
                    self.given[slot] += len(obj.parts)
                self.busy[slot] += 1
        return obj

    def release(self, objects):
        """Records whose reading (or task) is over."""
        for obj in objects:
            if obj.kind == STORED:
                with self.ledger:
                    self._less(self.busy, obj.slot)

    def keep(self, slot, delta):
        """A get-cache entry starts (+1) or stops (-1) keeping the slot's pins."""
        with self.ledger:
            if delta > 0:
                self.kept[slot] += 1
            else:
                self._less(self.kept, slot)

    def settle(self):
        """Count the views that died; queue the pins of slots nothing reads any more."""
        dead_views = self.dead_views
        if not dead_views:
            return
        with self.ledger:
            while dead_views:
                self._less(self.views, dead_views.popleft())

    def _less(self, counts, slot):
        left = counts[slot] - 1
        if left > 0:
            counts[slot] = left
            return
        del counts[slot]
        if slot in self.views or slot in self.busy or slot in self.kept:
            return
        given = self.given.pop(slot, 0)
        self.starts.pop(slot, None)
        if given:
            self.link.unpinned.extend([slot] * given)

    def write_object(self, buffers):
        offsets, size = layout(buffers)
        slot, start = self.link.request("alloc", size)
        memory = np.asarray(_Memory(self.base + start * PAGE, size))
        for buffer, offset in zip(buffers, offsets):
            source = np.frombuffer(buffer, dtype=np.uint8)
            memory[offset:offset + source.nbytes] = source
        self.written().append(slot)
        return slot, size, [(offset, buffer.nbytes) for buffer, offset in zip(buffers, offsets)]

    def written(self):
        written = getattr(self.local, "written", None)
        if written is None:
            written = self.local.written = []
        return written

    def take_written(self):
        written = self.written()
        self.local.written = []
        return written


class LinkRefs:
    """The worker's ref counts (``ObjectRef`` reports into ``events``, as on a rank)."""

    def __init__(self, link):
        self.link = link
        self.lock = threading.RLock()
        self.events = deque()                  # (object_id, +1 / -1)
        self.count = defaultdict(int)          # id -> instances here
        self.received = defaultdict(int)       # id -> refs the rank counted since the last DROP

    def note_escape(self, object_id):
        self.link.notes.append(protocol.escape(object_id))

    def got(self, ids):
        with self.lock:
            for object_id in ids:
                self.received[object_id] += 1

    def drops(self):
        """``[(id, count)]`` of ids whose last instance here is gone."""
        pairs = []
        with self.lock:
            events, count, received = self.events, self.count, self.received
            while events:
                object_id, delta = events.popleft()
                left = count[object_id] + delta
                if left > 0:
                    count[object_id] = left
                    continue
                del count[object_id]
                sent = received.pop(object_id, 0)
                if sent:
                    pairs.append((object_id, sent))
        return pairs


class _Quiet:
    """The rank-only parts of a runtime the API touches (flush, checks): nothing to do."""
    session = None                             # (the rank knows it)

    def flush(self):
        pass

    def check(self):
        pass

    def turn(self):
        return 0


WAITS = ("get", "wait")    # requests that may wait long: tasks sent ahead run meanwhile


class Link:
    """The runtime of a worker process (see the module's docstring)."""
    in_worker_process = True
    head = directory = None

    def __init__(self, channel, setup):
        self.channel = channel
        self.job = setup["job"]
        self.config = setup["config"]
        self.rank = self.job.rank
        self.lock = threading.RLock()          # the API's "with rt.lock": nothing to guard
        self.progress = self.transport = _Quiet()
        self.refs = LinkRefs(self)
        self.store = WorkerStore(self, setup["store_base"], setup["store_capacity"],
                                 setup["node_index"])
        self.access = LinkAccess(self)
        self.submitter = LinkSubmitter(self)
        self.client = LinkClient(self)
        self.requests = LinkRequests(self)
        self.liveness = LinkLiveness(self)
        self.notes = deque()                   # messages for the rank with no answer
        self.send_lock = threading.Lock()       # pending notes and a message leave together
        self.unpinned = deque()                # pins to give back to the rank (slots)
        self.cached = {}                       # object id -> [record, ids of its tasks]
        self.cached_by_task = defaultdict(list)
        self.cache_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._slots = {}                       # request id -> Slot
        self._read_lock = threading.Lock()
        self._waiting = set()                  # slots of threads not reading
        self.work = deque()                    # work no thread has taken yet
        self.work_waiters = deque()            # slots of threads waiting for work
        self.work_lock = threading.Lock()
        self.unclaimed = None                  # fn(): work came and no thread waits for it
        self.work_handlers = {}                # message kind -> fn(message), run by readers
        self.in_channel = 0                    # the main thread reads (signals wait)
        self.before_wait = None                # fn(): a task is about to wait in get/wait
        self.waits_now = 0                     # threads in such a wait now
        self.interrupt_pending = False         # SIGINT came while the main thread read
        self.cancelled = set()                 # ids of tasks here that were cancelled

    def is_cancelled(self, task_id):
        """Whether the task (running in this process) was cancelled."""
        return task_id in self.cancelled

    # ------------------------------------------------------------------ sending
    def _pending(self):
        """What waits to go before or after the next message: notes, pins to give back,
        drops (send lock held)."""
        batch = []
        notes = self.notes
        while notes:
            batch.append(notes.popleft())
        self.store.settle()
        if self.unpinned:
            slots = []
            while self.unpinned:
                slots.append(self.unpinned.popleft())
            batch.append(protocol.unpin(slots))
        drops = self.refs.drops() if self.refs.events else None
        if drops:
            batch.append(protocol.drop(drops))
        return batch

    def send(self, message, notes_first=True):
        """Send ``message`` after what is pending (drops, unpins), or before it: a task's
        results go first, since the refs inside them may be among the drops. One write for
        all of them."""
        with self.send_lock:
            batch = []
            if metrics.recorder.pending:       # (ahead of the results they belong with)
                taken = metrics.recorder.take()
                if taken is not None:
                    batch.append(protocol.metrics(taken))
            if output.buffer.pending:          # what it printed, ahead of its results too
                records = output.buffer.take()
                if records:
                    batch.append(protocol.output(records))
            if notes_first:
                batch.extend(self._pending())
                batch.append(message)
            else:
                batch.append(message)
                batch.extend(self._pending())
            self.channel.send_all(batch)

    def flush_output(self):
        """What the process printed goes to the rank now (``output.Flusher``, while a task
        keeps running)."""
        with self.send_lock:
            records = output.buffer.take()
            if records:
                self.channel.send(protocol.output(records))

    def flush_notes(self):
        with self.send_lock:
            batch = self._pending()
            if batch:
                self.channel.send_all(batch)

    # ------------------------------------------------------------------ requests
    def request(self, op, *args, timeout=None, notes_first=True):
        """Ask the rank to do ``op`` for the task this thread runs; return its answer.
        ``notes_first=False`` sends the request before the pending notes (drops...).

        Raises what the rank's side raised; returns ``TIMED_OUT`` after ``timeout``."""
        req_id = next(self._ids)
        slot = Slot()
        self._slots[req_id] = slot
        waits = op in WAITS
        if waits:
            with self.work_lock:
                self.waits_now += 1
            if self.before_wait is not None:
                self.before_wait()
        try:
            return self._request(req_id, slot, op, args, timeout, notes_first)
        finally:
            if waits:
                with self.work_lock:
                    self.waits_now -= 1

    def _request(self, req_id, slot, op, args, timeout, notes_first):
        task = current.current_task()
        with refcount.capture("contained"):
            blob = serialization.dumps(args)
        self.send(protocol.call(req_id, op, blob, None if task is None else task.task_id),
                  notes_first)
        if not self.await_slot(slot, timeout):
            if self._slots.pop(req_id, None) is not None:
                self.channel.send(protocol.forget(req_id))
                return TIMED_OUT
        ok, payload, pins = slot.value
        if self.interrupt_pending and threading.current_thread() is threading.main_thread():
            self.interrupt_pending = False     # cancelled while it waited: give back what
            for slot_number, count in pins or ():   # came with the answer, and stop
                self.unpinned.extend([slot_number] * count)
            raise KeyboardInterrupt
        value = self.unpickle(payload)
        if not ok:
            raise value
        return value

    def unpickle(self, payload):
        """A value the rank pickled: the refs in it are counted as received."""
        with self.refs.lock:
            with refcount.capture("borrowed") as ids:
                value = pickle.loads(payload)
            self.refs.got(ids)
        return value

    def on_rank(self, fn):
        """``fn(rt)`` run on the rank with its runtime (tools and tests that inspect it)."""
        return self.request("on_rank", fn)

    def report_refs(self, ids):
        """Refs found inside values unpickled here (arguments, ``get``): the rank holds them
        and registers as their borrower before the caller goes on."""
        if ids:
            self.refs.got(ids)
            # Before the drops pending: the refs may be gone already (a top-level argument is
            # replaced by its value), and their DROP must reach the rank after this.
            self.request("refs_in", list(ids), notes_first=False)

    # ------------------------------------------------------------------ reading
    def await_slot(self, slot, timeout=None):
        """Wait until ``slot`` is done, reading the socket when nobody else does; False if
        ``timeout`` passed first.

        Raises:
            RuntimeBrokenError: the rank is gone.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        main = threading.current_thread() is threading.main_thread()
        while not slot.done:
            if self._read_lock.acquire(blocking=False):
                if main:
                    self.in_channel += 1
                try:
                    while not slot.done:
                        remaining = None
                        if deadline is not None:
                            remaining = deadline - time.monotonic()
                            if remaining <= 0:
                                return False
                        self.flush_notes()
                        try:
                            message = self.channel.receive(remaining)
                        except EOFError:
                            os._exit(0)        # the rank is gone: so are we
                        if message is not None:
                            self.dispatch(message)
                finally:
                    if main:
                        self.in_channel -= 1
                    self._read_lock.release()
                    self._pass_reading()
            else:
                if slot.event is None:
                    slot.event = threading.Event()
                    if slot.done:
                        break
                self._waiting.add(slot)
                try:
                    wait = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                    if wait <= 0:
                        return slot.done
                    slot.event.wait(wait)
                    if not slot.done:
                        slot.event.clear()
                finally:
                    self._waiting.discard(slot)
        return True

    def _pass_reading(self):
        """The reader leaves: wake a waiting thread so that someone reads."""
        for slot in list(self._waiting):
            if not slot.done:
                slot.event.set()
                return

    def dispatch(self, message):
        kind = message[0]
        if kind == protocol.REPLY:
            _, req_id, ok, payload, pins = message
            slot = self._slots.pop(req_id, None)
            if slot is None:                   # its asker gave up: give its pins back
                for slot_number, count in pins or ():
                    self.unpinned.extend([slot_number] * count)
                return
            slot.complete((ok, payload, pins))
        elif kind == protocol.EXIT:
            os._exit(0)
        else:
            handler = self.work_handlers.get(kind)
            if handler is not None:
                handler(message)
                return
            self.queue_work(message)

    def queue_work(self, message):
        """Hand a work message to a thread waiting for work, or keep it for the next one
        (``unclaimed`` is told when none waits)."""
        with self.work_lock:
            if self.work_waiters:
                self.work_waiters.popleft().complete(message)
                return
            self.work.append(message)
        if self.unclaimed is not None:
            self.unclaimed()

    def drain(self):
        """Handle the messages already here, without waiting (unless another thread reads
        the socket now)."""
        if not self._read_lock.acquire(blocking=False):
            return
        try:
            while True:
                try:
                    message = self.channel.receive(0.0, 0.0)
                except EOFError:
                    os._exit(0)
                if message is None:
                    return
                self.dispatch(message)
        finally:
            self._read_lock.release()
            self._pass_reading()

    def next_work(self, first=None):
        """The next work message (RUN...), waiting for it (the reader that gets it runs it:
        no hand-off between threads); ``first``: a deque of messages to take before any."""
        with self.work_lock:
            if first:
                return first.popleft()
            if self.work:
                return self.work.popleft()
            slot = Slot()
            self.work_waiters.appendleft(slot)     # the latest comer is likely the reader
        self.await_slot(slot)
        return slot.value

    # ------------------------------------------------------------------ objects
    def materialize_all(self, answers):
        """Values of ``[(record, first page)]`` the rank sent (pinned for us; a first page
        of None: a record of the get cache, whose pins are kept here)."""
        store = self.store
        objects = [store.receive(raw, start) for raw, start in answers]
        try:
            with refcount.capture("borrowed") as borrowed:
                values = [serialization.materialize(obj, store) for obj in objects]
        finally:
            store.release(objects)
        self.report_refs(borrowed)
        return values

    # ------------------------------------------------------------------ the get cache
    # A task that gets a stored object again reads it without asking the rank: the record
    # (and the rank's pins on it) stays here until the tasks that got it have ended.
    def cached_records(self, object_ids, task_id):
        """``[(record, None)]`` of the ids, if every one is cached (then for this task
        too); else None."""
        with self.cache_lock:
            cached = self.cached
            entries = []
            for object_id in object_ids:
                entry = cached.get(object_id)
                if entry is None:
                    return None
                entries.append(entry)
            for object_id, entry in zip(object_ids, entries):
                if task_id not in entry[1]:
                    entry[1].add(task_id)
                    self.cached_by_task[task_id].append(object_id)
            return [(entry[0], None) for entry in entries]

    def cache(self, object_ids, answers, task_id):
        """Keep the stored objects of a get's answer for the task (its pins stay here)."""
        node = self.store.node_index
        with self.cache_lock:
            for object_id, (raw, start) in zip(object_ids, answers):
                if start is None or raw[0] != STORED or raw[1] != node:
                    continue
                entry = self.cached.get(object_id)
                if entry is None:
                    self.cached[object_id] = [raw, {task_id}]
                    self.store.keep(raw[3], +1)
                elif task_id not in entry[1]:
                    entry[1].add(task_id)
                else:
                    continue
                self.cached_by_task[task_id].append(object_id)

    def task_over(self, task_id):
        """The task ended: its cache entries are dropped once no other task uses them."""
        if task_id not in self.cached_by_task:
            return
        with self.cache_lock:
            for object_id in self.cached_by_task.pop(task_id, ()):
                entry = self.cached.get(object_id)
                if entry is None:
                    continue
                entry[1].discard(task_id)
                if not entry[1]:
                    del self.cached[object_id]
                    self.store.keep(entry[0][3], -1)


class LinkAccess:
    def __init__(self, link):
        self.link = link

    def get(self, object_ids, timeout=None):
        link = self.link
        object_ids = list(object_ids)
        task = current.current_task()
        if task is not None and link.cached:
            records = link.cached_records(object_ids, task.task_id)
            if records is not None:
                return link.materialize_all(records)
        answers = link.request("get", object_ids, timeout=timeout)
        if answers is TIMED_OUT:
            raise GetTimeoutError(f"get timed out after {timeout} s: "
                                  f"{len(set(object_ids))} objects asked")
        if task is not None:
            link.cache(object_ids, answers, task.task_id)
        return link.materialize_all(answers)

    def wait(self, object_ids, num_returns, timeout, streams=()):
        return set(self.link.request("wait", list(object_ids), num_returns, timeout,
                                     list(streams)))

    def next_item(self, task_id, timeout=None):
        return self.link.request("next_item", task_id, timeout)

    def item_ready(self, task_id):
        return self.link.request("item_ready", task_id)

    def stream_ended(self, task_id):
        return self.link.request("stream_ended", task_id)

    def future(self, ref):
        """A Future of the ref's value, completed by a thread of its own that waits for it
        (and reads the socket while no other thread does)."""
        link = self.link
        future = Future()

        def complete():
            try:
                future.set_result(link.access.get([ref.id])[0])
            except BaseException as error:
                future.set_exception(error)
        threading.Thread(target=complete, name="hpcray-future", daemon=True).start()
        return future

    def borrow(self, object_id):
        return self.link.request("borrow", object_id)


class LinkSubmitter:
    def __init__(self, link):
        self.link = link
        self.sent_functions = set()

    def submit_task(self, name, func_id, func_blob, args, kwargs, num_returns, resources,
                    max_retries=0, retry_exceptions=False, node_hint=None, strategy=None,
                    stream=None, runtime_env=None):
        if func_id in self.sent_functions:     # the rank keeps the functions it was sent
            func_blob = None
        else:
            self.sent_functions.add(func_id)
        return self.link.request("submit", name, func_id, func_blob, args, kwargs, num_returns,
                                 resources, max_retries, retry_exceptions, node_hint, strategy,
                                 stream, runtime_env)

    def put(self, value):
        store = self.link.store
        with refcount.capture("contained") as contained:
            try:
                obj = serialization.encode(value, store, self.link.rank,
                                           self.link.config.inline_limit)
            except ObjectStoreFullError:
                raise
            except Exception as error:
                raise SerializationError(f"could not serialize the value given to put(): "
                                         f"{type(error).__name__}: {error}") from error
        return self.link.request("put", tuple(obj), contained, store.take_written(),
                                 notes_first=False)

    def cancel(self, object_id, force=False, recursive=True):
        self.link.request("cancel", object_id, force, recursive)

    def free(self, object_ids):
        self.link.request("free", list(object_ids))

    def locate(self, object_id):
        return self.link.request("locate", object_id)

    def warn_if_infeasible(self, resources, what):
        self.link.request("warn_if_infeasible", resources, what)


class LinkClient:
    def __init__(self, link):
        self.link = link
        self.key = None

    def session_key(self):
        if self.key is None:                   # (a worker lives in one session)
            self.key = self.link.request("session_key")
        return self.key

    def create(self, *args, **kwargs):
        return self.link.request("actor_create", args, kwargs)

    def call(self, *args):
        return self.link.request("actor_call", *args)

    def kill(self, actor_id, reason, restart=False):
        self.link.request("kill", actor_id, reason, restart)

    def describe(self, info):
        return self.link.request("describe", info)


class LinkRequests:
    def __init__(self, link):
        self.link = link

    def ask(self, constructor, *args):
        return self.link.request("ask", constructor.__name__, *args)


class LinkLiveness:
    def __init__(self, link):
        self.link = link

    @property
    def dead(self):
        return self.link.request("dead")
