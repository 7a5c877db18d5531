"""Actors living on this rank: their instances, their mailboxes, and the threads that run calls.

A rank hosts any number of actors; an actor is an object here, not a process. Calls arrive as
``ACTOR_CALL`` messages and wait in the actor's mailbox (``mailbox.py``: one FIFO per caller)
until their turn. Who runs them:

* a plain actor (one call at a time): the rank's serving threads, like tasks
  (``execution.schedule``); a call that blocks in ``get`` lends the rank to other work, as a
  task does;
* ``max_concurrency=k``: a pool of up to ``k`` threads of its own;
* an async actor (``async def`` methods): the rank's event loop thread, up to
  ``max_concurrency`` calls at once (1000 by default).

An actor ends when it is killed, when its ``__init__`` raises, or when every handle is gone
and its queued calls are done (``ACTOR_RELEASE``); the head learns it (``ACTOR_GONE``).
Everything but the user's code runs with the runtime lock held.
"""
import asyncio
import contextvars
import inspect
import threading
import traceback
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from ..core import current, invoke
from ..exceptions import TaskError
from ..wire import messages, serialization
from ..wire.specs import ActorState
from .client import ActorClient
from .mailbox import Mailbox

# The actor method call running in this thread or coroutine (its ``actor_id`` says whose).
current_call = contextvars.ContextVar("hpcray_actor_call", default=None)
REMEMBER_DEAD = 100_000                # ended actors whose late calls still get a clear error


class HostedActor:
    """One actor on this rank: its spec, instance, state, mailbox and the calls running."""
    __slots__ = ("spec", "instance", "state", "mailbox", "active", "limit", "pool",
                 "released", "abandoned", "kill_reason")

    def __init__(self, spec):
        self.spec = spec
        self.instance = None
        self.state = ActorState.PENDING_CREATION   # until its __init__ returns
        self.mailbox = Mailbox()
        self.active = {}                   # task id -> call running now
        self.limit = spec.max_concurrency
        self.pool = None                   # threads of a threaded actor
        self.released = False              # every handle is gone: end once idle
        self.abandoned = set()             # running calls already answered (actor killed)
        self.kill_reason = None


class ActorHost:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``transport``, ``progress``,
    ``access`` (arguments) and ``execution`` (serving threads, results)."""

    def __init__(self, lock, job, transport, progress, access, execution):
        self.lock = lock
        self.job = job
        self.transport = transport
        self.progress = progress
        self.access = access
        self.execution = execution
        self.actors = {}                   # actor id -> HostedActor
        self.classes = {}                  # class id -> class
        self.dead = OrderedDict()          # actor id -> error object for late calls
        self.early = {}                    # actor id -> [(handler, args)] that overtook its start
        self.loop = None                   # event loop of this rank's async actors

    # ------------------------------------------------------------------ construction
    def on_start(self, spec):
        """ACTOR_START: construct the actor here once its arguments are."""
        actor = self.actors[spec.actor_id] = HostedActor(spec)
        deps = {}
        missing = [len(spec.deps)]
        schedule = self.execution.schedule

        def arrived(obj, object_id):
            deps[object_id] = obj
            missing[0] -= 1
            if missing[0] == 0:
                schedule(lambda: self._construct(actor, deps))
        if not spec.deps:
            schedule(lambda: self._construct(actor, deps))
        for object_id in spec.deps:
            self.access.lookup(object_id, lambda obj, oid=object_id: arrived(obj, oid))
        for handler, args in self.early.pop(spec.actor_id, ()):
            handler(*args)

    def _construct(self, actor, deps):
        """Build the instance (on a serving thread, lock not held) and report to the owner."""
        spec = actor.spec
        task = spec.construction()
        error = None
        token = current_call.set(task)         # __init__ may join a collective group
        stack = current.task_stack()
        stack.append(task)                     # a wait in __init__ lends the rank meanwhile
        with self.lock:
            self.progress.enter_user_code()
        try:
            cls = self.classes.get(spec.class_id)
            if cls is None:
                cls = self.classes[spec.class_id] = serialization.loads(spec.class_blob)
            prepared = invoke.prepare(self.execution, task, deps, cls)
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
        with self.lock:
            self.progress.leave_user_code()
            if error is not None:
                reason = f"its __init__ raised {type(error).__name__}: {error}"
                tb = getattr(error, "remote_traceback", None) or (
                    f"Remote traceback ({spec.class_name}.__init__ on {self.job.where()}):\n"
                    + "".join(traceback.format_exception(type(error), error,
                                                         error.__traceback__)))
                cause = error.cause if isinstance(error, TaskError) else error
                if isinstance(error, SystemExit):  # the actor exits (see invoke.execute); no
                    reason = f"its __init__ called sys.exit({error.code!r})"   # SystemExit
                    cause = None                   # as the cause of what get raises
                failure = serialization.actor_died(spec.class_name, spec.actor_id, reason,
                                                   serialization.picklable_or_none(cause), tb)
                result = failure
            else:
                actor.instance = instance
                result = serialization.encode(None)
            self.execution.send_results(task, [(spec.actor_id, result)], None, None)
            if actor.state != ActorState.PENDING_CREATION:   # killed while it was being built
                return
            if error is not None:
                self._end(actor, failure, "its __init__ raised")
                return
            actor.state = ActorState.ALIVE
            if actor.kill_reason is not None:
                self.on_kill(spec.actor_id, actor.kill_reason)
                return
            self._dispatch(actor)
            self._maybe_end(actor)

    # ------------------------------------------------------------------ calls
    def on_call(self, spec):
        """ACTOR_CALL: queue a method call in its actor's mailbox."""
        actor = self.actors.get(spec.actor_id)
        if actor is None:
            error = self.dead.get(spec.actor_id)
            if error is None:                  # overtook the actor's start: keep it for then
                self.early.setdefault(spec.actor_id, []).append((self.on_call, (spec,)))
            else:
                self._answer(spec, error)
            return
        if actor.state == ActorState.DEAD:
            self._answer(spec, self.dead[spec.actor_id])
            return
        mailbox = actor.mailbox
        entry = mailbox.add(spec)
        if not spec.deps:
            self._dispatch(actor)
            return

        def arrived(obj, object_id):
            if actor.state == ActorState.DEAD:
                return
            mailbox.arrived(entry, object_id, obj)
            if entry.missing == 0:
                self._dispatch(actor)
        for object_id in spec.deps:
            self.access.lookup(object_id, lambda obj, oid=object_id: arrived(obj, oid))

    def _dispatch(self, actor):
        if actor.state != ActorState.ALIVE or self.progress.stopping:
            return                             # (once the job is over, no call starts)
        runnable = actor.mailbox.runnable
        while runnable and len(actor.active) < actor.limit:
            entry = runnable.popleft()         # (mailbox.next, inlined: hot)
            call, deps = entry.call, entry.deps
            actor.active[call.task_id] = call
            if actor.spec.is_async:
                self._event_loop().call_soon_threadsafe(self._start_async, actor, call, deps)
            elif actor.limit > 1:
                if actor.pool is None:
                    actor.pool = ThreadPoolExecutor(
                        actor.limit, thread_name_prefix=f"hpcray-{actor.spec.class_name}")
                actor.pool.submit(self._run, actor, call, deps)
            else:
                self.execution.schedule(lambda a=actor, c=call, d=deps: self._run(a, c, d))

    def _run(self, actor, call, deps):
        """Run one call on this thread (lock not held)."""
        stack = current.task_stack()
        progress = self.progress
        with self.lock:
            progress.user_code += 1            # (progress.enter_user_code, inlined: hot)
        stack.append(call)
        token = current_call.set(call)
        results = contained = exit_reason = None
        try:
            function = getattr(actor.instance, call.func_id, None)
            if function is None:
                results = invoke.failed(self.execution, call, AttributeError(
                    f"actor {actor.spec.class_name} has no method {call.func_id!r}"))
            else:
                results, contained = invoke.execute(self.execution, call, deps, function)
        except invoke.ActorExit as exit_:
            exit_reason = exit_.reason
        finally:
            current_call.reset(token)
            stack.pop()
            with self.lock:
                progress.user_code -= 1
                if exit_reason is not None:
                    self._exit(actor, exit_reason)
                self._finished(actor, call, results, contained)

    def _exit(self, actor, reason):
        """A call of the actor called sys.exit (``reason`` says so): the actor is over, as in
        Ray, where its process exits. This call and every other one, waiting or running, get
        ActorDiedError (the call is answered here: ``_finished`` then finds it abandoned)."""
        if actor.state == ActorState.ALIVE:
            self._end(actor, serialization.actor_died(actor.spec.class_name,
                                                      actor.spec.actor_id, reason), reason)

    def _start_async(self, actor, call, deps):
        asyncio.ensure_future(self._run_async(actor, call, deps))

    async def _run_async(self, actor, call, deps):
        """Run one call of an async actor on the event loop (lock not held)."""
        results = contained = exit_reason = None
        executor = self.execution
        current_call.set(call)                 # this coroutine's own context
        try:
            prepared = invoke.prepare(executor, call, deps,
                                      getattr(actor.instance, call.func_id, None))
            if prepared[0] is None:
                results = prepared[1]
            else:
                function, args, kwargs = prepared
                try:
                    value = function(*args, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
                except SystemExit as error:    # the actor exits (see invoke.execute)
                    exit_reason = invoke.ActorExit(call, error).reason
                except BaseException as error:
                    results = invoke.failed(executor, call, error)
                else:
                    results, contained = invoke.package(executor, call, value)
        finally:
            with self.lock:
                if exit_reason is not None:
                    self._exit(actor, exit_reason)
                self._finished(actor, call, results, contained)

    def _finished(self, actor, call, results, contained):
        actor.active.pop(call.task_id, None)
        if call.task_id in actor.abandoned:    # the actor was killed: already answered
            actor.abandoned.discard(call.task_id)
            return
        if results is None:
            results = invoke.failed(self.execution, call,
                                    RuntimeError("the call ended abnormally"))
        self.execution.send_results(call, results, None, contained)
        self._dispatch(actor)
        self._maybe_end(actor)

    def _answer(self, call, error):
        self.execution.send_results(call, [(object_id, error) for object_id in call.return_ids()],
                                    None, None)

    def on_cancel(self, task_id):
        """CANCEL_CALL: drop a call that has not started yet (one running finishes)."""
        for actor in self.actors.values():
            call = actor.mailbox.cancel(task_id)
            if call is not None:
                self._answer(call, serialization.cancelled(call.task_id))
                self._dispatch(actor)
                return

    def _event_loop(self):
        if self.loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="hpcray-async-actors",
                             daemon=True).start()
            self.loop = loop
        return self.loop

    # ------------------------------------------------------------------ end of life
    def on_release(self, actor_id):
        """ACTOR_RELEASE: every handle is gone; end the actor once its calls are done."""
        actor = self.actors.get(actor_id)
        if actor is None:
            if actor_id not in self.dead:
                self.early.setdefault(actor_id, []).append((self.on_release, (actor_id,)))
            return
        actor.released = True
        self._maybe_end(actor)

    def _maybe_end(self, actor):
        if (actor.released and actor.state == ActorState.ALIVE and not actor.active
                and not actor.mailbox):
            self._end(actor, serialization.actor_died(actor.spec.class_name,
                                                      actor.spec.actor_id,
                                                      "all handles to it are gone"),
                      "released")

    def on_kill(self, actor_id, reason):
        """ACTOR_KILL: end the actor now."""
        actor = self.actors.get(actor_id)
        if actor is None:
            if actor_id not in self.dead:
                self.early.setdefault(actor_id, []).append((self.on_kill, (actor_id, reason)))
            return
        if actor.state == ActorState.PENDING_CREATION:   # ends as soon as __init__ returns
            actor.kill_reason = reason
            return
        self._end(actor, serialization.actor_died(actor.spec.class_name, actor_id, reason),
                  reason)

    def _end(self, actor, error, reason):
        """The actor is over: every call waiting or running gets ``error``; the head learns."""
        actor_id = actor.spec.actor_id
        actor.state = ActorState.DEAD
        for call in actor.mailbox.drain():
            self._answer(call, error)
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
        self.transport.send(0, messages.actor_gone(actor_id, reason))

    def forget(self):
        """A new session: every actor of the old one is gone (no messages)."""
        for actor in self.actors.values():
            actor.state = ActorState.DEAD
            actor.instance = None
            if actor.pool is not None:
                actor.pool.shutdown(wait=False)
        self.actors.clear()
        self.dead.clear()
        self.early.clear()


def _unpack_error(obj):
    try:
        serialization.materialize(obj)
    except BaseException as error:
        return error
    return RuntimeError("construction failed")


def attach(rt):
    """Give a rank its actors' roles: the caller's side and the hosting side."""
    client = ActorClient(rt.lock, rt.job, rt.transport, rt.progress, rt.submitter,
                         rt.ownership, rt.refs, rt.access, rt.requests)
    rt.attach("client", client)
    rt.liveness.dead_listeners.append(client.on_rank_dead)
    rt.attach("host", ActorHost(rt.lock, rt.job, rt.transport, rt.progress, rt.access,
                                rt.execution))
