"""The caller's side of actors, on every rank: creating actors, calling them, where each
lives, the calls waiting for that, and the actors this rank created (owns).

Creation and calls are submitted through the one submission path (``Submitter.submit``), with
this client as their router. A call goes straight to the actor's rank (``ACTOR_CALL``) once
this rank knows it; until then (the head has not answered yet) calls wait here in
submission order. MPI keeps the messages from one rank to another in order, so calls from one
caller arrive in the order they were made.

An actor's *token* is an object its creator owns and every handle holds a ref to; when the
token is freed (no handle anywhere), the creator releases the actor (``ACTOR_RELEASE``).
All methods but :meth:`create`, :meth:`call` and :meth:`describe` run with the runtime lock
held.
"""
from collections import defaultdict

from ..core import current
from ..core.object_ref import ObjectRef
from ..exceptions import ActorDiedError
from ..wire import messages, serialization
from ..wire.ids import OWNER_SHIFT
from ..wire.specs import DYNAMIC, STREAMING, ActorSpec, TaskSpec


class ActorClient:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``transport``, ``progress``
    (the session), ``submitter``, ``ownership``, ``refs``, ``access`` and ``requests``."""

    def __init__(self, lock, job, transport, progress, submitter, ownership, refs, access,
                 requests):
        self.lock = lock
        self.job = job
        self.transport = transport
        self.progress = progress
        self.submitter = submitter
        self.ownership = ownership
        self.refs = refs
        self.access = access
        self.requests = requests
        self.locations = {}                    # actor id -> rank hosting it
        self.dead = {}                         # actor id -> error object for its calls
        self.backlog = defaultdict(list)       # actor id -> calls waiting for its location
        self.asked = set()                     # actor ids looked up at the head
        self.owned = {}                        # actor id -> ActorSpec, created here, alive
        self.kept_args = {}                    # actor id -> refs to its __init__ arguments,
                                               # kept for restarts (max_restarts)
        self.construction = _Construction(self)

    def session_key(self):
        """What a handle made now records: handles of an earlier session are dead."""
        return (self.job.job_tag, self.progress.session)

    # ------------------------------------------------------------------ creation
    def create(self, class_name, class_id, class_blob, args, kwargs, resources,
               max_concurrency, is_async, methods, name=None, namespace=None, detached=False,
               get_if_exists=False, max_restarts=0, max_task_retries=0, strategy=None,
               runtime_env=None):
        """Create an actor (lock not held); return ``(token ref, class_name, methods,
        is_async)`` of the new actor, or of the live one of that name (``get_if_exists``).

        Raises:
            ValueError: the name is taken (without ``get_if_exists``).
        """
        self.submitter.warn_if_infeasible(resources, f"actor {class_name}")
        session = self.progress.session
        made = {}

        def make_spec(task_id, deps, args_blob, args_ref):
            spec = made["spec"] = ActorSpec(
                task_id, self.job.rank, class_name, class_id, class_blob, args_blob, deps,
                args_ref, resources, max_concurrency, is_async, name, namespace, detached,
                session, methods, max_restarts, max_task_retries, strategy, runtime_env)
            self.construction.pending[task_id] = spec
            return spec.construction()
        construction, (token,) = self.submitter.submit(f"{class_name}.__init__", args, kwargs,
                                                      1, make_spec, self.construction)
        spec = made["spec"]
        if name is not None:
            try:
                status, info = self.requests.ask(messages.name_actor, spec, bool(get_if_exists))
            except BaseException:
                with self.lock:
                    self._abandon(spec, construction)
                raise
            if status == "exists":
                with self.lock:
                    self._abandon(spec, construction)
                return self.describe(info)
        return token, class_name, methods, is_async

    def send_creation(self, construction):
        """Router of constructions: the actor goes to the head to be placed."""
        spec = self.construction.pending.pop(construction.task_id)
        self.owned[spec.actor_id] = spec
        self.ownership.when_freed(spec.actor_id, self.on_freed)
        if spec.detached:
            self.refs.escape(spec.actor_id)    # no count of handles ends it
        if spec.max_restarts:                  # built again (maybe on another rank) with
            rank = self.job.rank               # the arguments this rank owns
            self.kept_args[spec.actor_id] = [
                ObjectRef(object_id) for object_id in spec.deps
                if object_id >> OWNER_SHIFT == rank]
        if spec.name is None:                  # a named one goes with its NAME_ACTOR request
            self.transport.send(0, messages.actor_create(spec))
        return 0

    def _abandon(self, spec, construction):
        """Undo a creation (a named actor that already existed, or whose request failed)."""
        self.owned.pop(spec.actor_id, None)
        self.ownership.abandon_task(construction)

    def describe(self, info):
        """A handle's parts for an actor the head described: its token is borrowed like a
        received ref (lock not held)."""
        actor_id, class_name, methods, is_async = info
        return self.access.borrow(actor_id), class_name, methods, is_async

    def on_placed(self, actor_id, rank, error):
        """ACTOR_PLACED: where an actor lives (or the error its calls get)."""
        error = messages.error_from_wire(error)
        if error is not None:
            self.dead[actor_id] = error
            self.locations.pop(actor_id, None)
            for spec in self.backlog.pop(actor_id, ()):
                self._fail(spec, error)
            construction = self.ownership.record(actor_id)
            if construction is not None:       # it died before it was built (its rank died)
                self.ownership.deliver(actor_id, [(actor_id, error)])
            return
        self.locations[actor_id] = rank
        for spec in self.backlog.pop(actor_id, ()):
            self.transport.send(rank, messages.actor_call(spec))
            record = self.ownership.record(spec.task_id)
            if record is not None:
                record.where = rank

    # ------------------------------------------------------------------ calls
    def call(self, actor_id, class_name, method_name, args, kwargs, num_returns, handle_session):
        """Submit a method call (lock not held); return the refs of its results.

        Raises:
            ActorDiedError: the handle belongs to an earlier session.
        """
        if handle_session != (self.job.job_tag, self.progress.session):
            raise ActorDiedError(class_name, f"{actor_id:016x}",
                                 "it belonged to an earlier session, ended by hpcray.shutdown()")
        name = f"{class_name}.{method_name}"
        if isinstance(num_returns, tuple):     # (STREAMING, back-pressure)
            stream = num_returns[1]
        else:
            stream = num_returns if num_returns in (STREAMING, DYNAMIC) else None
        count = 1 if stream is not None else max(num_returns, 1)
        task = current.current_task()          # the caller: this rank and the task it runs
        caller = (self.job.rank, task.task_id if task is not None else 0)   # (0: the driver)
        session = self.progress.session

        def make_spec(task_id, deps, args_blob, args_ref):
            return TaskSpec(task_id, self.job.rank, name, method_name, None, args_blob, deps,
                            count, {}, 0, False, False, session, args_ref=args_ref,
                            actor_id=actor_id, caller=caller, stream=stream)
        return self.submitter.submit(name, args, kwargs, count, make_spec, self)[1]

    def send(self, spec):
        """Router: send a call to its actor, or keep it until the actor's rank is known."""
        actor_id = spec.actor_id
        rank = self.locations.get(actor_id)
        if rank is not None:
            self.transport.send(rank, messages.actor_call(spec))
            return rank
        error = self.dead.get(actor_id)
        if error is not None:
            self._fail(spec, error)
            return None
        self.backlog[actor_id].append(spec)
        if actor_id not in self.asked:
            self.asked.add(actor_id)
            self.transport.send(0, messages.actor_lookup(actor_id, self.job.rank))
        return None

    def cancel(self, record, force=False, recursive=True):
        """Router: cancel a call that has not started."""
        spec = record.spec
        if record.where is None:               # still waiting here for the actor's location
            waiting = self.backlog.get(spec.actor_id)
            if waiting and spec in waiting:
                waiting.remove(spec)
                self._fail(spec, serialization.cancelled(spec.task_id))
        else:
            self.transport.send(record.where, messages.cancel_call(spec.task_id))

    def where(self, record):
        return record.where

    def on_rank_dead(self, rank, tasks):
        """``rank`` died with its actors. The head restarts those that may restart elsewhere
        (or says they are dead): the calls this rank sent there wait, in their order, for
        the head to say where each actor is now, and go there marked as sent again (their
        new host applies ``max_task_retries``), or fail with the actor's error."""
        for actor_id, where in list(self.locations.items()):
            if where == rank:
                del self.locations[actor_id]
                self.asked.discard(actor_id)
        calls = [record for record in self.ownership.tasks.values()
                 if record.spec.actor_id is not None and record.where == rank
                 and record.spec.actor_id != record.spec.task_id]    # (not constructions)
        for record in calls:                   # (in the order they were submitted)
            spec = record.spec
            spec.resent += 1
            record.where = None
            self.backlog[spec.actor_id].append(spec)
        for actor_id in {record.spec.actor_id for record in calls}:
            if actor_id not in self.asked:
                self.asked.add(actor_id)
                self.transport.send(0, messages.actor_lookup(actor_id, self.job.rank))

    def _fail(self, spec, error):
        self.ownership.deliver(spec.task_id, [(object_id, error)
                                              for object_id in spec.return_ids()])

    # ------------------------------------------------------------------ end of life
    def on_freed(self, object_id):
        """The token of an actor this rank created was freed: no handle is left."""
        spec = self.owned.pop(object_id, None)
        self.kept_args.pop(object_id, None)
        if spec is None or spec.detached:
            return
        self._send_to_host(object_id, messages.actor_release(object_id),
                           messages.actor_release_at_head(object_id))

    def kill(self, actor_id, reason, restart=False):
        self._send_to_host(actor_id, messages.actor_kill(actor_id, reason, restart),
                           messages.actor_kill_at_head(actor_id, reason, restart))

    def _send_to_host(self, actor_id, to_host, to_head):
        rank = self.locations.get(actor_id)
        if rank is None:                       # not placed yet, as far as this rank knows:
            self.transport.send(0, to_head)    # the head forwards it once it is
        else:
            self.transport.send(rank, to_host)

    def forget(self):
        self.locations.clear()
        self.dead.clear()
        self.backlog.clear()
        self.asked.clear()
        self.owned.clear()
        self.kept_args.clear()
        self.construction.pending.clear()


class _Construction:
    """The router of actor constructions: to the head (the construction's result, the
    token, comes back from the rank that built the actor)."""

    def __init__(self, client):
        self.client = client
        self.pending = {}                      # construction task id -> ActorSpec

    def send(self, construction):
        return self.client.send_creation(construction)

    def cancel(self, record, force=False, recursive=True):
        pass                                   # as in Ray: cancel does not stop a creation

    def where(self, record):
        return record.where
