"""The caller's side of actors, on every rank: where each actor lives, calls waiting for that,
and the actors this rank created (owns).

A call goes straight to the actor's rank (``ACTOR_CALL``) once this rank knows it; until then
(the head has not answered yet) calls wait here in submission order. MPI keeps the messages
from one rank to another in order, so calls from one caller arrive in the order they were
made. All methods run with the runtime lock held.
"""
from collections import defaultdict

from . import serialization
from .exceptions import ActorDiedError, TaskCancelledError
from .protocol import Msg


class ActorClient:
    def __init__(self, rt):
        self.rt = rt
        self.locations = {}                    # actor id -> rank hosting it
        self.dead = {}                         # actor id -> error object for its calls
        self.backlog = defaultdict(list)       # actor id -> calls waiting for its location
        self.asked = set()                     # actor ids looked up at the head
        self.owned = {}                        # actor id -> ActorSpec, created here, alive
        self.replies = {}                      # QUERY token -> answer from the head
        self._tokens = 0

    # ------------------------------------------------------------------ creation
    def create(self, spec):
        """Send a new actor to the head for placement (its token is pending until built)."""
        self.rt.transport.send(0, (Msg.ACTOR_CREATE, spec))

    def on_placed(self, actor_id, rank, error):
        if error is not None:
            self.dead[actor_id] = error
            for spec in self.backlog.pop(actor_id, ()):
                self._fail(spec, error)
            return
        self.locations[actor_id] = rank
        tasks = self.rt.tasks
        for spec in self.backlog.pop(actor_id, ()):
            self.rt.transport.send(rank, (Msg.ACTOR_CALL, spec))
            record = tasks.get(spec.task_id)
            if record is not None:
                record.where = rank

    # ------------------------------------------------------------------ calls
    def route(self, spec):
        """Send a call to its actor, or keep it until the actor's rank is known."""
        actor_id = spec.actor_id
        rank = self.locations.get(actor_id)
        if rank is not None:
            self.rt.transport.send(rank, (Msg.ACTOR_CALL, spec))
            return rank
        error = self.dead.get(actor_id)
        if error is not None:
            self._fail(spec, error)
            return None
        self.backlog[actor_id].append(spec)
        self._ask(actor_id)
        return None

    def _ask(self, actor_id):
        if actor_id not in self.asked:
            self.asked.add(actor_id)
            self.rt.transport.send(0, (Msg.ACTOR_LOOKUP, actor_id, self.rt.rank))

    def cancel_waiting(self, spec):
        """Cancel a call still waiting here for its actor's location."""
        waiting = self.backlog.get(spec.actor_id)
        if waiting and spec in waiting:
            waiting.remove(spec)
            self._fail(spec, cancelled(spec))

    def _fail(self, spec, error):
        results = [(object_id, error) for object_id in spec.return_ids()]
        self.rt._on_result(spec.task_id, results, None)

    # ------------------------------------------------------------------ end of life
    def release(self, actor_id):
        """Every handle to an actor this rank created is gone: end it after its queued calls."""
        spec = self.owned.pop(actor_id, None)
        if spec is None or spec.detached:
            return
        self._send_to_host(actor_id, (Msg.ACTOR_RELEASE, actor_id))

    def kill(self, actor_id, reason):
        self._send_to_host(actor_id, (Msg.ACTOR_KILL, actor_id, reason))

    def _send_to_host(self, actor_id, message):
        rank = self.locations.get(actor_id)
        # Not placed yet (as far as this rank knows): the head forwards it once it is.
        self.rt.transport.send(0 if rank is None else rank, message)

    # ------------------------------------------------------------------ questions to the head
    def new_token(self):
        self._tokens += 1
        return (self.rt.rank, self._tokens)

    def on_reply(self, token, answer):
        self.replies[token] = answer

    def forget(self):
        failed = [spec for specs in self.backlog.values() for spec in specs]
        self.locations.clear(); self.dead.clear(); self.backlog.clear(); self.asked.clear()
        self.owned.clear()
        return failed


def died(actor_name, actor_id, reason, cause=None, remote_traceback=None):
    """The error object that calls to a dead actor get."""
    error = ActorDiedError(actor_name, f"{actor_id:016x}", reason, cause, remote_traceback)
    return (serialization.ERROR, serialization.dumps(error))


def cancelled(spec):
    """The error object of a cancelled call."""
    error = TaskCancelledError(f"{spec.task_id:016x}")
    return (serialization.ERROR, serialization.dumps(error))
