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
import sys
import threading
import traceback
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from ..core import current, invoke, output, runtime_env
from ..exceptions import (ActorUnavailableError, RuntimeEnvSetupError, TaskError,
                          WorkerCrashedError)
from ..wire import messages, serialization
from ..wire.specs import ActorState
from .client import ActorClient
from .mailbox import Mailbox

# The actor method call running in this thread or coroutine (its ``actor_id`` says whose).
current_call = contextvars.ContextVar("hpcray_actor_call", default=None)
REMEMBER_DEAD = 100_000                # ended actors whose late calls still get a clear error
CALLS_AHEAD = 16        # calls of a plain actor sent to its worker process before they run


class HostedActor:
    """One actor on this rank: its spec, instance, state, mailbox and the calls running."""
    __slots__ = ("spec", "instance", "state", "mailbox", "active", "limit", "pool",
                 "released", "abandoned", "kill_reason", "deps", "built", "restarts",
                 "attempts")

    def __init__(self, spec):
        self.spec = spec
        self.instance = None
        self.state = ActorState.PENDING_CREATION   # until its __init__ returns
        self.mailbox = Mailbox()
        self.active = {}                   # task id -> QueuedCall running now
        self.limit = spec.max_concurrency
        self.pool = None                   # threads of a threaded actor
        self.released = False              # every handle is gone: end once idle
        self.abandoned = set()             # running calls already answered (actor killed)
        self.kill_reason = None
        self.deps = None                   # its __init__'s arguments (kept for restarts)
        self.built = False                 # its creator has the answer of its first build
        self.restarts = 0                  # times it was built again after its process died
        self.attempts = {}                 # task id -> runs of a call cut short by a death


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
        self.async_calls = {}              # task id -> asyncio task of a running async call
        self.cancelled_calls = set()       # ids of those cancelled while running

    # ------------------------------------------------------------------ construction
    def on_start(self, spec):
        """ACTOR_START: construct the actor here once its arguments are."""
        actor = self.actors[spec.actor_id] = HostedActor(spec)
        deps = {}
        missing = [len(spec.deps)]

        def arrived(obj, object_id):
            deps[object_id] = obj
            missing[0] -= 1
            if missing[0] == 0:
                self._build(actor, deps)
        if not spec.deps:
            self._build(actor, deps)
        for object_id in spec.deps:
            self.access.lookup(object_id, lambda obj, oid=object_id: arrived(obj, oid))
        for handler, args in self.early.pop(spec.actor_id, ()):
            handler(*args)

    def _build(self, actor, deps):
        """Its arguments are here: build it in a worker process, or on a serving thread."""
        if actor.spec.max_restarts:
            actor.deps = deps                  # built again with them after a death
        runner = self.execution.runner
        if runner is not None:
            runner.actor_new(actor, deps)
        else:
            self.execution.schedule(lambda: self._construct(actor, deps))

    def _construct(self, actor, deps):
        """Build the instance on this serving thread (lock not held)."""
        with self.lock:
            self.progress.enter_user_code()
            self.execution.events.began(actor.spec.construction())
        try:
            instance, failure = construct(self.execution, actor.spec, deps, self.classes)
        finally:
            with self.lock:
                self.progress.leave_user_code()
        with self.lock:
            actor.instance = instance
            self.built(actor, failure)

    def built(self, actor, failure):
        """Its ``__init__`` returned (``failure``: None) or failed (the error record its
        calls get): tell its creator the first time, then let calls run or end it."""
        spec = actor.spec
        result = serialization.encode(None) if failure is None else failure
        if not actor.built:
            actor.built = True
            self.execution.send_results(spec.construction(), [(spec.actor_id, result)],
                                        None, None)
        else:                                  # a restart: only the dashboard hears of it
            self.execution.events.ended(spec.construction(), [(spec.actor_id, result)])
        if actor.state not in (ActorState.PENDING_CREATION, ActorState.RESTARTING):
            return                             # killed while it was being built
        if failure is not None:
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
        if spec.resent:                        # its actor's last rank died while it was there
            retries = actor.spec.max_task_retries
            if retries != -1 and spec.resent > retries:
                self._answer(spec, _unavailable(
                    actor.spec, f"the rank it lived on died while the call was there; it "
                                f"restarts on {self.job.where()} (max_task_retries={retries})"))
                return
            actor.attempts[spec.task_id] = spec.resent
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
        runner = self.execution.runner
        limit = actor.limit
        if runner is not None and limit == 1:
            limit = CALLS_AHEAD                # its process runs them one at a time
        while runnable and len(actor.active) < limit:
            entry = runnable.popleft()         # (mailbox.next, inlined: hot)
            call, deps = entry.call, entry.deps
            actor.active[call.task_id] = entry
            if runner is not None:
                runner.actor_call(actor, call, deps)
                continue
            self.execution.events.began(call)
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
        if invoke.captures_children(actor.spec.strategy):
            call.strategy = actor.spec.strategy    # (its tasks join its placement group)
        if actor.spec.resources:
            call.resources = actor.spec.resources  # (what the actor holds: its context's)
        stack = current.task_stack()
        progress = self.progress
        with self.lock:
            progress.user_code += 1            # (progress.enter_user_code, inlined: hot)
        stack.append(call)
        token = current_call.set(call)
        results = contained = exit_reason = None
        try:
            function = invoke.actor_method(actor.instance, call.func_id)
            if function is None:
                results = invoke.failed(self.execution, call, AttributeError(
                    f"actor {actor.spec.class_name} has no method {call.func_id!r}"))
            else:
                try:
                    with runtime_env.applied(actor.spec.runtime_env):
                        results, contained = invoke.execute(self.execution, call, deps,
                                                            function)
                except RuntimeEnvSetupError as error:
                    results = invoke.failed(self.execution, call, error)
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
        self.async_calls[call.task_id] = asyncio.ensure_future(
            self._run_async(actor, call, deps))

    async def _run_async(self, actor, call, deps):
        """Run one call of an async actor on the event loop (lock not held)."""
        results = contained = exit_reason = None
        try:
            results, contained, exit_reason = await run_async_call(
                self.execution, call, actor.instance, deps)
        finally:
            with self.lock:
                self.async_calls.pop(call.task_id, None)
                if call.task_id in self.cancelled_calls:   # (whatever the coroutine did)
                    self.cancelled_calls.discard(call.task_id)
                    results, contained, exit_reason = invoke.cancelled(call), None, None
                if exit_reason is not None:
                    self._exit(actor, exit_reason)
                self._finished(actor, call, results, contained)

    def call_done(self, actor, call, results, contained):
        """A call that ran in a worker process is over (``results``: None if it ended the
        actor, which ``exited`` said)."""
        self._finished(actor, call, results, contained)

    def call_exited(self, actor, call, reason):
        """A call ended its actor (``sys.exit``, ``exit_actor``) in a worker process."""
        self._exit(actor, reason)
        self._finished(actor, call, None, None)

    def _finished(self, actor, call, results, contained):
        actor.active.pop(call.task_id, None)
        actor.attempts.pop(call.task_id, None)
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
        """CANCEL_CALL: drop a call that has not started yet (one running finishes). A call
        already sent to the actor's worker process ahead of its turn is dropped there."""
        runner = self.execution.runner
        for actor in self.actors.values():
            call = actor.mailbox.cancel(task_id)
            if call is not None:
                self._answer(call, serialization.cancelled(call.task_id))
                self._dispatch(actor)
                return
            if runner is not None and task_id in actor.active:
                runner.actor_cancel(actor, task_id)
                return
            running = self.async_calls.get(task_id)
            if running is not None:            # an async call running here: cancel it
                self.cancelled_calls.add(task_id)
                self.loop.call_soon_threadsafe(running.cancel)
                return

    def _event_loop(self):
        if self.loop is None:
            self.loop = start_event_loop()
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

    def process_died(self, actor, reason, exit_code=None):
        """The worker process of ``actor`` died (``reason`` says how, ``exit_code`` is its
        status): build it again while ``max_restarts`` allows (its calls that were there run
        again while their ``max_task_retries`` allows, else fail with ActorUnavailableError;
        calls made meanwhile wait), else it is dead: ActorDiedError, whose cause is a
        WorkerCrashedError. As Ray does."""
        spec = actor.spec
        if actor.state == ActorState.DEAD:
            return
        limit = spec.max_restarts
        if actor.kill_reason is not None or not (limit == -1 or actor.restarts < limit):
            what = (f"its worker process died ({reason})" if not limit else
                    f"its worker process died ({reason}) after {actor.restarts} restart(s) "
                    f"(max_restarts={limit})")
            failure = serialization.actor_died(spec.class_name, spec.actor_id, what,
                                               WorkerCrashedError(spec.class_name, exit_code,
                                                                  None, reason))
            if actor.built:
                self._end(actor, failure, what)
            else:
                self.built(actor, failure)     # its creator waits for the first build
            return
        actor.restarts += 1
        actor.state = ActorState.RESTARTING
        retries = spec.max_task_retries
        again = []
        for entry in actor.active.values():
            call = entry.call
            runs = actor.attempts.get(call.task_id, 0) + 1
            if retries == -1 or runs <= retries:
                actor.attempts[call.task_id] = runs
                again.append(entry)
            else:
                self._answer(call, _unavailable(
                    spec, f"its worker process died ({reason}) while the call was there; it "
                          f"restarts (max_task_retries={retries})"))
        actor.active.clear()
        actor.mailbox.runnable.extendleft(reversed(again))     # first, in their order
        sys.stderr.write(f"hpcray: actor {spec.class_name} ({spec.actor_id:016x}) on "
                         f"{self.job.where()}: its worker process died ({reason}); "
                         f"restarting it (restart {actor.restarts} of "
                         f"{'unlimited' if limit == -1 else limit})\n")
        self.execution.runner.actor_new(actor, actor.deps or {})

    def on_kill(self, actor_id, reason, restart=False):
        """ACTOR_KILL: end the actor now; with ``restart`` (``kill(no_restart=False)``), as
        if its process died: built again while ``max_restarts`` allows."""
        actor = self.actors.get(actor_id)
        if actor is None:
            if actor_id not in self.dead:
                self.early.setdefault(actor_id, []).append(
                    (self.on_kill, (actor_id, reason, restart)))
            return
        runner = self.execution.runner
        if restart and runner is not None:
            if actor.state != ActorState.ALIVE:
                return                         # (being built, or built again, already)
            limit = actor.spec.max_restarts
            if limit == -1 or actor.restarts < limit:
                actor.state = ActorState.RESTARTING    # later calls wait for the new one
                runner.actor_crash(actor)      # its process ends: process_died restarts it
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
        for entry in actor.active.values():    # still running: answered now, result dropped
            actor.abandoned.add(entry.call.task_id)
            self._answer(entry.call, error)
        actor.active.clear()
        actor.instance = actor.deps = None
        if actor.pool is not None:
            actor.pool.shutdown(wait=False)
        if self.execution.runner is not None:
            self.execution.runner.actor_end(actor)
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


def construct(executor, spec, deps, classes, keep_env=False):
    """Build an actor's instance (lock not held; on a rank's serving thread or in a worker
    process): ``(instance, None)``, or ``(None, failure)``, the error record its calls get.
    ``classes`` caches the unpickled classes by id. The actor's ``runtime_env`` is set
    around its ``__init__``, or for good (``keep_env``: a process of its own)."""
    try:
        if keep_env and spec.runtime_env:
            runtime_env.apply(spec.runtime_env)
            return _construct(executor, spec, deps, classes)
        with runtime_env.applied(spec.runtime_env):
            return _construct(executor, spec, deps, classes)
    except RuntimeEnvSetupError as error:
        return None, serialization.actor_died(spec.class_name, spec.actor_id,
                                              f"its runtime_env could not be set up: {error}",
                                              error)


def _construct(executor, spec, deps, classes):
    task = spec.construction()
    error = instance = None
    token = current_call.set(task)             # __init__ may join a collective group
    stack = current.task_stack()
    stack.append(task)                         # a wait in __init__ lends the rank meanwhile
    try:
        cls = classes.get(spec.class_id)
        if cls is None:
            cls = classes[spec.class_id] = serialization.loads(spec.class_blob)
        prepared = invoke.prepare(executor, task, deps, cls)
        if prepared[0] is None:
            error = _unpack_error(prepared[1][0][1])
        else:
            function, args, kwargs = prepared
            instance = function(*args, **kwargs)
            output.name_actor(spec.actor_id, instance)     # (its prints' prefix)
    except BaseException as exc:
        error = exc
    finally:
        stack.pop()
        current_call.reset(token)
    if error is None:
        return instance, None
    reason = f"its __init__ raised {type(error).__name__}: {error}"
    tb = getattr(error, "remote_traceback", None) or (
        f"Remote traceback ({spec.class_name}.__init__ on {executor.where()}):\n"
        + "".join(traceback.format_exception(type(error), error, error.__traceback__)))
    cause = error.cause if isinstance(error, TaskError) else error
    if isinstance(error, SystemExit):          # the actor exits (see invoke.execute); no
        reason = f"its __init__ called sys.exit({error.code!r})"       # SystemExit as the
        cause = None                           # cause of what get raises
    return None, serialization.actor_died(spec.class_name, spec.actor_id, reason,
                                          serialization.picklable_or_none(cause), tb)


def start_event_loop():
    """An event loop running on a thread of its own, for async actors' calls."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="hpcray-async-actors", daemon=True).start()
    return loop


async def run_async_call(executor, call, instance, deps):
    """Run one call of an async actor on its event loop (lock not held; on a rank or in a
    worker process): ``(results, contained, exit reason)``, the reason set (and no results)
    when the call ended the actor."""
    current_call.set(call)                     # this coroutine's own context
    prepared = invoke.prepare(executor, call, deps, invoke.actor_method(instance, call.func_id))
    if prepared[0] is None:
        return prepared[1], None, None
    function, args, kwargs = prepared
    try:
        value = function(*args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
    except SystemExit as error:                # the actor exits (see invoke.execute)
        return None, None, invoke.ActorExit(call, error).reason
    except BaseException as error:
        return invoke.failed(executor, call, error), None, None
    if call.stream is not None:                # a generator method: its items one by one
        if hasattr(value, "__anext__"):
            return await invoke.stream_out_async(executor, call, value) + (None,)
        return invoke.stream_out(executor, call, value) + (None,)
    return invoke.package(executor, call, value) + (None,)


def _unavailable(spec, why):
    """The error record of a call cut short by its actor's restart (Ray's
    ActorUnavailableError: the call may or may not have run; the actor comes back)."""
    return serialization.exception_object(ActorUnavailableError(
        f"actor {spec.class_name} ({spec.actor_id:016x}) is unavailable: {why}. The call may "
        f"or may not have run; later calls wait for the restart"))


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
