"""Actors living on this rank: their instances, their mailboxes, and the threads that run calls.

A rank hosts any number of actors; an actor is an object here, not a process. Calls arrive as
``ACTOR_CALL`` messages and wait in the actor's mailbox: one FIFO queue per caller (calls from
one caller run in submission order; a call waiting for its arguments holds back only that
caller's later calls), feeding the actor's runnable queue. Who runs them:

* a plain actor (one call at a time): the rank's serving threads, like tasks (``actor_ready``);
  a call that blocks in ``get`` lends the rank to other work, as a task does;
* ``max_concurrency=k``: a pool of up to ``k`` threads of its own;
* an async actor (``async def`` methods): the rank's event loop thread, up to
  ``max_concurrency`` calls at once (1000 by default).

Everything but the user's code runs with the runtime lock held.
"""
import asyncio
import contextvars
import inspect
import threading
import traceback
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor

from . import serialization, worker
from .actor_client import cancelled, died
from .exceptions import TaskError
from .protocol import Msg, TaskSpec
from .serialization import rank_label

STARTING, ALIVE, DEAD = range(3)
# The actor method call running in this thread or coroutine (its ``actor_id`` says whose).
current_call = contextvars.ContextVar("hpcray_actor_call", default=None)
REMEMBER_DEAD = 100_000                # ended actors whose late calls still get a clear error


class HostedActor:
    __slots__ = ("spec", "instance", "state", "callers", "runnable", "active", "limit",
                 "pool", "released", "abandoned", "kill_reason")

    def __init__(self, spec):
        self.spec = spec
        self.instance = None
        self.state = STARTING
        self.callers = {}                  # caller -> deque of [call, dep objects, missing]
        self.runnable = deque()            # (call, dep objects) in the order they may run
        self.active = {}                   # task id -> call running now
        self.limit = spec.max_concurrency
        self.pool = None                   # threads of a threaded actor
        self.released = False              # every handle is gone: end once idle
        self.abandoned = set()             # running calls already answered (actor killed)
        self.kill_reason = None


class ActorHost:
    def __init__(self, rt):
        self.rt = rt
        self.actors = {}                   # actor id -> HostedActor
        self.classes = {}                  # class id -> class
        self.dead = OrderedDict()          # actor id -> error object for late calls
        self.early = {}                    # actor id -> messages that overtook its start
        self.loop = None                   # event loop of this rank's async actors

    # ------------------------------------------------------------------ construction
    def on_start(self, spec):
        rt = self.rt
        if spec.session != rt.session:
            return
        actor = self.actors[spec.actor_id] = HostedActor(spec)
        deps = {}
        missing = [len(spec.deps)]

        def arrived(obj, object_id):
            deps[object_id] = obj
            missing[0] -= 1
            if missing[0] == 0:
                rt.actor_ready.append(lambda: self._construct(actor, deps))
        if not spec.deps:
            rt.actor_ready.append(lambda: self._construct(actor, deps))
        for object_id in spec.deps:
            rt.lookup(object_id, lambda obj, oid=object_id: arrived(obj, oid))
        for message in self.early.pop(spec.actor_id, ()):
            rt._handle(message)

    def _construct(self, actor, deps):
        """Build the instance (on a serving thread, lock not held) and report to the owner."""
        rt, spec = self.rt, actor.spec
        task = construction_task(spec)
        error = None
        token = current_call.set(task)         # __init__ may join a collective group
        stack = rt.tls.__dict__.setdefault("stack", [])
        stack.append(task)                     # a wait in __init__ lends the rank meanwhile
        with rt.lock:
            rt.executing += 1
            rt.in_user_code = True
        try:
            cls = self.classes.get(spec.class_id)
            if cls is None:
                cls = self.classes[spec.class_id] = serialization.loads(spec.class_blob)
            prepared = worker.prepare(rt, task, deps, cls)
            if prepared[0] is None:
                error = _unpack_error(prepared[1][0][1])
            else:
                function, args, kwargs = prepared
                instance = function(*args, **kwargs)
        except BaseException as exc:
            error = exc
        finally:
            stack.pop()
            current_call.reset(token)
        with rt.lock:
            rt.executing -= 1
            if rt.executing == 0 and rt.rank != 0:
                rt.in_user_code = False
            if error is not None:
                reason = f"its __init__ raised {type(error).__name__}: {error}"
                tb = getattr(error, "remote_traceback", None) or (
                    f"Remote traceback ({spec.class_name}.__init__ on {rank_label()}):\n"
                    + "".join(traceback.format_exception(type(error), error,
                                                         error.__traceback__)))
                cause = error.cause if isinstance(error, TaskError) else error
                failure = died(spec.class_name, spec.actor_id, reason,
                               serialization._picklable_or_none(cause), tb)
                result = failure
            else:
                actor.instance = instance
                result = (serialization.VALUE, serialization.dumps(None))
            rt.send_results(task, [(spec.actor_id, result)], None, None)
            if actor.state != STARTING:        # killed while it was being built
                return
            if error is not None:
                self._end(actor, failure, "its __init__ raised")
                return
            actor.state = ALIVE
            if actor.kill_reason is not None:
                self.on_kill(spec.actor_id, actor.kill_reason)
                return
            self._dispatch(actor)
            self._maybe_end(actor)

    # ------------------------------------------------------------------ calls
    def on_call(self, spec):
        rt = self.rt
        if spec.session != rt.session:
            return
        actor = self.actors.get(spec.actor_id)
        if actor is None:
            error = self.dead.get(spec.actor_id)
            if error is None:                  # overtook the actor's start: keep it for then
                self.early.setdefault(spec.actor_id, []).append((Msg.ACTOR_CALL, spec))
            else:
                self._answer(spec, error)
            return
        if actor.state == DEAD:
            self._answer(spec, self.dead[spec.actor_id])
            return
        deps = {}
        entry = [spec, deps, len(spec.deps)]
        queue = actor.callers.get(spec.caller)
        if queue is None:
            queue = actor.callers[spec.caller] = deque()
        queue.append(entry)
        if not spec.deps:
            self._advance(actor, spec.caller)
            return

        def arrived(obj, object_id):
            deps[object_id] = obj
            entry[2] -= 1
            if entry[2] == 0 and actor.state != DEAD:
                self._advance(actor, spec.caller)
        for object_id in spec.deps:
            rt.lookup(object_id, lambda obj, oid=object_id: arrived(obj, oid))

    def _advance(self, actor, caller):
        """Move the caller's calls whose arguments are here, in order, to the runnable queue."""
        queue = actor.callers.get(caller)
        while queue and queue[0][2] == 0:
            call, deps, _ = queue.popleft()
            actor.runnable.append((call, deps))
        if queue is not None and not queue:
            del actor.callers[caller]
        self._dispatch(actor)

    def _dispatch(self, actor):
        if actor.state != ALIVE:
            return
        while actor.runnable and len(actor.active) < actor.limit:
            call, deps = actor.runnable.popleft()
            actor.active[call.task_id] = call
            if actor.spec.is_async:
                self._event_loop().call_soon_threadsafe(self._start_async, actor, call, deps)
            elif actor.limit > 1:
                if actor.pool is None:
                    actor.pool = ThreadPoolExecutor(
                        actor.limit, thread_name_prefix=f"hpcray-{actor.spec.class_name}")
                actor.pool.submit(self._run, actor, call, deps)
            else:
                self.rt.actor_ready.append(lambda a=actor, c=call, d=deps: self._run(a, c, d))

    def _run(self, actor, call, deps):
        """Run one call on this thread (lock not held)."""
        rt = self.rt
        stack = rt.tls.__dict__.setdefault("stack", [])
        with rt.lock:
            rt.executing += 1
            rt.in_user_code = True
        stack.append(call)
        token = current_call.set(call)
        results = contained = None
        try:
            function = getattr(actor.instance, call.func_id, None)
            if function is None:
                results = worker.failed(call, AttributeError(
                    f"actor {actor.spec.class_name} has no method {call.func_id!r}"))
            else:
                results, contained = worker.execute(rt, call, deps, function)
        finally:
            current_call.reset(token)
            stack.pop()
            with rt.lock:
                rt.executing -= 1
                if rt.executing == 0 and rt.rank != 0:
                    rt.in_user_code = False
                self._finished(actor, call, results, contained)

    def _start_async(self, actor, call, deps):
        asyncio.ensure_future(self._run_async(actor, call, deps))

    async def _run_async(self, actor, call, deps):
        """Run one call of an async actor on the event loop (lock not held)."""
        rt = self.rt
        results = contained = None
        current_call.set(call)                 # this coroutine's own context
        try:
            prepared = worker.prepare(rt, call, deps, getattr(actor.instance, call.func_id, None))
            if prepared[0] is None:
                results = prepared[1]
            else:
                function, args, kwargs = prepared
                try:
                    value = function(*args, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
                except BaseException as error:
                    results = worker.failed(call, error)
                else:
                    results, contained = worker.package(rt, call, value)
        finally:
            with rt.lock:
                self._finished(actor, call, results, contained)

    def _finished(self, actor, call, results, contained):
        actor.active.pop(call.task_id, None)
        if call.task_id in actor.abandoned:    # the actor was killed: already answered
            actor.abandoned.discard(call.task_id)
            return
        if results is None:
            results = worker.failed(call, RuntimeError("the call ended abnormally"))
        self.rt.send_results(call, results, None, contained)
        self._dispatch(actor)
        self._maybe_end(actor)

    def _answer(self, call, error):
        self.rt.send_results(call, [(object_id, error) for object_id in call.return_ids()],
                             None, None)

    def cancel(self, task_id):
        """Drop a call that has not started yet; return whether one was found."""
        for actor in self.actors.values():
            for queue in actor.callers.values():
                for entry in queue:
                    if entry[0].task_id == task_id:
                        queue.remove(entry)
                        self._answer(entry[0], cancelled(entry[0]))
                        self._advance(actor, entry[0].caller)
                        return True
            for item in actor.runnable:
                if item[0].task_id == task_id:
                    actor.runnable.remove(item)
                    self._answer(item[0], cancelled(item[0]))
                    return True
        return False

    def _event_loop(self):
        if self.loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="hpcray-async-actors",
                             daemon=True).start()
            self.loop = loop
        return self.loop

    # ------------------------------------------------------------------ end of life
    def on_release(self, actor_id):
        actor = self.actors.get(actor_id)
        if actor is None:
            if actor_id not in self.dead:
                self.early.setdefault(actor_id, []).append((Msg.ACTOR_RELEASE, actor_id))
            return
        actor.released = True
        self._maybe_end(actor)

    def _maybe_end(self, actor):
        if (actor.released and actor.state == ALIVE and not actor.active
                and not actor.runnable and not actor.callers):
            self._end(actor, died(actor.spec.class_name, actor.spec.actor_id,
                                  "all handles to it are gone"), "released")

    def on_kill(self, actor_id, reason):
        actor = self.actors.get(actor_id)
        if actor is None:
            if actor_id not in self.dead:
                self.early.setdefault(actor_id, []).append((Msg.ACTOR_KILL, actor_id, reason))
            return
        if actor.state == STARTING:            # ends as soon as its __init__ returns
            actor.kill_reason = reason
            return
        self._end(actor, died(actor.spec.class_name, actor_id, reason), reason)

    def _end(self, actor, error, reason):
        """The actor is over: every call waiting or running gets ``error``; the head learns."""
        actor_id = actor.spec.actor_id
        actor.state = DEAD
        for queue in actor.callers.values():
            for call, _, _ in queue:
                self._answer(call, error)
        actor.callers.clear()
        for call, _ in actor.runnable:
            self._answer(call, error)
        actor.runnable.clear()
        for call in actor.active.values():     # still running: answered now, result dropped
            actor.abandoned.add(call.task_id)
            self._answer(call, error)
        actor.active.clear()
        actor.instance = None
        if actor.pool is not None:
            actor.pool.shutdown(wait=False)
        del self.actors[actor_id]
        self.dead[actor_id] = error
        while len(self.dead) > REMEMBER_DEAD:
            self.dead.popitem(last=False)
        self.rt.transport.send(0, (Msg.ACTOR_GONE, actor_id, reason))

    def forget(self):
        """A new session: every actor of the old one is gone (no messages)."""
        for actor in self.actors.values():
            actor.state = DEAD
            actor.instance = None
            if actor.pool is not None:
                actor.pool.shutdown(wait=False)
        self.actors.clear()
        self.dead.clear()
        self.early.clear()


def construction_task(spec):
    """The actor's construction seen as a task whose one result is the actor's token."""
    return TaskSpec(spec.actor_id, spec.owner, f"{spec.class_name}.__init__", None, None,
                    spec.args_blob, spec.deps, 1, {}, 0, False, False, spec.session,
                    args_ref=spec.args_ref, actor_id=spec.actor_id)


def _unpack_error(obj):
    try:
        serialization.materialize(obj)
    except BaseException as error:
        return error
    return RuntimeError("construction failed")
