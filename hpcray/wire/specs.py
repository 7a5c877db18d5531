"""What messages carry about work: a task (or an actor method call) and an actor, and the
states an actor goes through (one vocabulary for the head's directory and the host rank)."""
from .objects import from_wire


class ActorState:
    """Ray's names for an actor's states."""
    PENDING_CREATION = "PENDING_CREATION"   # not placed yet, or its __init__ is running
    ALIVE = "ALIVE"
    RESTARTING = "RESTARTING"   # its process died; built again (max_restarts)
    DEAD = "DEAD"


# Scheduling strategies as specs carry them (``strategy``): None is Ray's "DEFAULT" (the
# least-loaded rank with room, on the arguments' node first); SPREAD goes round the nodes; a
# node affinity tuple keeps the work on one node (``head/scheduler.py``).
SPREAD = "SPREAD"


# A generator task's ``stream`` (Ray's ``num_returns="streaming"`` / ``"dynamic"``): its items
# go to the owner one by one as they are yielded (GEN_ITEM), and its one return object, the
# end of the stream, holds how many there were (DYNAMIC: a DynamicObjectRefGenerator of them).
# An int N is STREAMING with back-pressure: the task pauses while N items wait unconsumed
# (``_generator_backpressure_num_objects``; the owner says what was consumed: GEN_CONSUMED).
STREAMING, DYNAMIC = "streaming", "dynamic"


PLACEMENT_GROUP = "pg"


def in_placement_group(group_id, bundle_index=-1, capture_child_tasks=False):
    """``("pg", group id, bundle index (-1: any), capture child tasks)``."""
    return (PLACEMENT_GROUP, group_id, bundle_index, capture_child_tasks)


def node_affinity(node, soft, spill_on_unavailable=False, fail_on_unavailable=False):
    """``(node index, soft, spill_on_unavailable, fail_on_unavailable)``; node -1: no node of
    the job has the id asked for."""
    return (node, soft, spill_on_unavailable, fail_on_unavailable)


def _wire(obj):
    return None if obj is None else tuple(obj)


class TaskSpec:
    """Everything an executor needs to run one task and send its results to the owner.

    A task with ``num_returns = k`` owns object ids ``task_id .. task_id + k - 1``.
    ``deps`` lists the object ids of the top-level ``ObjectRef`` arguments, resolved to values
    before the call. ``via_head`` tells the executor to report completion to the head too.
    ``node_hint`` names the node whose store holds most of the arguments' bytes, if any.
    ``args_blob`` is the encoded ``(args, kwargs)`` (an object record); when they hold large
    buffers they are stored like a ``put`` instead, as the owned object ``args_ref`` (also one
    of ``deps``).

    A method call on an actor is a TaskSpec too: ``actor_id`` names the actor, ``func_id``
    the method, and ``caller`` the submitting thread of work (calls from one caller run in
    the order they were submitted).
    """
    __slots__ = ("task_id", "owner", "name", "func_id", "func_blob", "args_blob", "deps",
                 "num_returns", "resources", "max_retries", "retry_exceptions", "via_head",
                 "session", "node_hint", "args_ref", "actor_id", "caller", "resent", "strategy",
                 "stream", "runtime_env")

    def __init__(self, task_id, owner, name, func_id, func_blob, args_blob, deps, num_returns,
                 resources, max_retries, retry_exceptions, via_head, session, node_hint=None,
                 args_ref=None, actor_id=None, caller=None, resent=0, strategy=None,
                 stream=None, runtime_env=None):
        self.task_id = task_id
        self.owner = owner
        self.name = name
        self.func_id = func_id
        self.func_blob = func_blob
        self.args_blob = args_blob
        self.deps = deps
        self.num_returns = num_returns
        self.resources = resources
        self.max_retries = max_retries
        self.retry_exceptions = retry_exceptions
        self.via_head = via_head
        self.session = session
        self.node_hint = node_hint             # node holding most of the argument bytes
        self.args_ref = args_ref               # object id of arguments too large to inline
        self.actor_id = actor_id               # a method call: the actor it goes to
        self.caller = caller                   # a method call: who submitted it (ordering)
        self.resent = resent                   # a method call: times its actor's rank died
                                               # while it was there (max_task_retries)
        self.strategy = strategy               # scheduling strategy (see SPREAD above)
        self.stream = stream                   # a generator's: STREAMING or DYNAMIC (None:
                                               # not a generator)
        self.runtime_env = runtime_env         # core/runtime_env.check's, or None

    def __reduce__(self):
        args = self.args_blob
        fields = (self.task_id, self.owner, self.name, self.func_id, self.func_blob,
                  None if args is None else tuple(args), self.deps, self.num_returns, self.resources,
                  self.max_retries, self.retry_exceptions, self.via_head, self.session,
                  self.node_hint, self.args_ref, self.actor_id, self.caller, self.resent,
                  self.strategy, self.stream, self.runtime_env)
        # without encoded arguments there is no record to rebuild: no extra call on arrival
        return (TaskSpec if args is None else _task_spec, fields)

    def return_ids(self):
        return range(self.task_id, self.task_id + self.num_returns)


def _task_spec(task_id, owner, name, func_id, func_blob, args_blob, *rest):
    return TaskSpec(task_id, owner, name, func_id, func_blob,
                    None if args_blob is None else from_wire(args_blob), *rest)


class ActorSpec:
    """Everything a rank needs to construct an actor, and the head to place it.

    ``actor_id`` is also the id of the actor's *token*, an object owned by the creator that
    every handle holds a ref to: when the last ref anywhere is gone, the actor is released.
    Construction reports to the owner as a task whose one result is that token.
    """
    __slots__ = ("actor_id", "owner", "class_name", "class_id", "class_blob", "args_blob",
                 "deps", "args_ref", "resources", "max_concurrency", "is_async", "name",
                 "namespace", "detached", "session", "methods", "max_restarts",
                 "max_task_retries", "strategy", "runtime_env")

    def __init__(self, actor_id, owner, class_name, class_id, class_blob, args_blob, deps,
                 args_ref, resources, max_concurrency, is_async, name, namespace, detached,
                 session, methods, max_restarts=0, max_task_retries=0, strategy=None,
                 runtime_env=None):
        self.actor_id = actor_id
        self.owner = owner
        self.class_name = class_name
        self.class_id = class_id
        self.class_blob = class_blob
        self.args_blob = args_blob
        self.deps = deps
        self.args_ref = args_ref
        self.resources = resources
        self.max_concurrency = max_concurrency
        self.is_async = is_async
        self.name = name                       # registered name, or None
        self.namespace = namespace
        self.detached = detached
        self.session = session
        self.methods = methods                 # {method name: num_returns}
        self.max_restarts = max_restarts       # times it is built again after its process
        self.max_task_retries = max_task_retries   # died (-1: forever); times a call is
                                               # run again after such a death
        self.strategy = strategy               # scheduling strategy (see SPREAD above)
        self.runtime_env = runtime_env         # core/runtime_env.check's, or None

    def __reduce__(self):
        values = [getattr(self, name) for name in self.__slots__]
        values[5] = _wire(self.args_blob)
        return (_actor_spec, tuple(values))

    def construction(self):
        """The actor's construction seen as a task whose one result is the actor's token."""
        return TaskSpec(self.actor_id, self.owner, f"{self.class_name}.__init__", None, None,
                        self.args_blob, self.deps, 1, {}, 0, False, False, self.session,
                        args_ref=self.args_ref, actor_id=self.actor_id)


def _actor_spec(*values):
    values = list(values)
    if values[5] is not None:
        values[5] = from_wire(values[5])
    return ActorSpec(*values)
