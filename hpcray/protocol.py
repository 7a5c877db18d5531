"""The messages ranks send each other, and the task specification they carry.

Every runtime message is a tuple ``(kind, *fields)`` pickled by mpi4py and sent on ``TAG`` of the
runtime's private communicator (a ``Dup`` of the job's, so user MPI traffic never mixes with it).

====================  ==========================  ==========================================
kind                  direction                   fields
====================  ==========================  ==========================================
TASK                  scheduler -> executor       TaskSpec
SPILL                 busy worker -> head         TaskSpec (the head places it)
RESULT                executor -> owner           task_id, [(object_id, object), ...], seconds,
                                                  executor, {object_id: [ids its pickle holds]}
DONE                  executor -> head            task_id, seconds (frees the head's slot)
BLOCKED / UNBLOCKED   executor -> head            task_id (a task waits in ``get``)
GET_OBJECT            any rank -> owner           object_id, requesting rank
OBJECT                owner -> requester          object_id, object
CANCEL                owner -> head/executor      task_id
SHUTDOWN              head -> workers             session (``None``: leave the job)
RESET                 head -> workers             new session number (after ``shutdown()``)
BYE                   worker -> head              rank, pid (acknowledges SHUTDOWN, then finalizes)
FETCH                 any -> rank that stored it  slot, size, requester, tag: send the bytes of a
                                                  stored object (raw buffer on ``tag``)
FREE                  owner -> rank that stored   slot: the object is dead, release its pages
RMA_OPEN              reader -> home node's first object_id, slot, rank, reader's node's first rank:
                      rank                        a copy, please (served or placed by copy_tree)
RMA_SERVE             home -> a node with a copy  object_id, reader, home rank: serve it one
RMA_READY             server -> reader            object_id, first page (None: lost), server rank,
                                                  its slot, home rank (None: no tree): the
                                                  object is held in place for an MPI_Rget
RMA_CLOSE             reader -> server            slot: the Get is done, release it
RMA_DONE              reader -> home              object_id, server, reader's node's first rank
                                                  (None: it cannot serve): the copy is done
RMA_GONE              server -> home              object_id, server, reader: no copy here any more
BORROW / ACK          borrower -> owner -> it     object_id, rank: register a borrower (refs.py)
UNBORROW              borrower -> owner           object_id, rank: its last instance is gone
HANDOFF               owner -> executor           task_id: the refs inside its results are held
ACTOR_CREATE          creator -> head             ActorSpec (the head places the actor)
ACTOR_START           head -> host rank           ActorSpec (construct it there)
ACTOR_PLACED          head -> caller              actor_id, rank, error: where calls go (or why
                                                  none can)
ACTOR_LOOKUP          caller -> head              actor_id, rank: where is it? (answered by
                                                  ACTOR_PLACED once known)
ACTOR_CALL            caller -> host rank         TaskSpec with ``actor_id`` (a method call)
ACTOR_RELEASE         owner -> host rank          actor_id: every handle is gone; end it once
                                                  its queued calls are done
ACTOR_KILL            any -> host rank (or head)  actor_id, reason: end it now (``kill``)
ACTOR_GONE            host rank -> head           actor_id, reason: it ended (frees its name
                                                  and resources)
QUERY / REPLY         any -> head -> it           token, kind, payload, rank / token, answer
                                                  (named actors, ``get_actor``, ``list_actors``)
BATCH                 any                         [message, ...] (what one rank had queued
                                                  for another when it flushed its outbox)
====================  ==========================  ==========================================
"""
TAG = 7


class Msg:
    """Message kinds (plain ints: they are pickled into every message).""" 
    TASK = 1
    SPILL = 2
    RESULT = 3
    DONE = 4
    BLOCKED = 5
    UNBLOCKED = 6
    GET_OBJECT = 7
    OBJECT = 8
    CANCEL = 9
    SHUTDOWN = 10
    RESET = 11
    BYE = 12
    BATCH = 13
    FETCH = 14
    FREE = 15
    BORROW = 16
    ACK = 17
    UNBORROW = 18
    HANDOFF = 19
    RMA_OPEN = 20
    RMA_READY = 21
    RMA_CLOSE = 22
    ACTOR_CREATE = 23
    ACTOR_START = 24
    ACTOR_PLACED = 25
    ACTOR_LOOKUP = 26
    ACTOR_CALL = 27
    ACTOR_RELEASE = 28
    ACTOR_KILL = 29
    ACTOR_GONE = 30
    QUERY = 31
    REPLY = 32
    RMA_SERVE = 33
    RMA_DONE = 34
    RMA_GONE = 35


# Object bytes between nodes travel as raw buffers, a few tags per transfer (one per chunk),
# from this range.
DATA_TAG_BASE = 100
DATA_TAGS = 30000


# Object ids are integers: the owner's rank in the high bits, a per-owner counter below.
OWNER_SHIFT = 40


def make_id(owner, counter):
    return (owner << OWNER_SHIFT) | counter


def owner_of(object_id):
    return object_id >> OWNER_SHIFT


class TaskSpec:
    """Everything an executor needs to run one task and send its results to the owner.

    A task with ``num_returns = k`` owns object ids ``task_id .. task_id + k - 1``.
    ``deps`` lists the object ids of the top-level ``ObjectRef`` arguments, resolved to values
    before the call. ``via_head`` tells the executor to report completion to the head too.
    ``node_hint`` names the node whose store holds most of the arguments' bytes, if any.
    ``args_blob`` is the encoded ``(args, kwargs)``; when they hold large buffers they are
    stored like a ``put`` instead, as the owned object ``args_ref`` (also one of ``deps``).

    A method call on an actor is a TaskSpec too: ``actor_id`` names the actor, ``func_id``
    the method, and ``caller`` the submitting thread of work (calls from one caller run in
    the order they were submitted).
    """
    __slots__ = ("task_id", "owner", "name", "func_id", "func_blob", "args_blob", "deps",
                 "num_returns", "resources", "max_retries", "retry_exceptions", "via_head",
                 "session", "node_hint", "args_ref", "actor_id", "caller")

    def __init__(self, task_id, owner, name, func_id, func_blob, args_blob, deps, num_returns,
                 resources, max_retries, retry_exceptions, via_head, session, node_hint=None,
                 args_ref=None, actor_id=None, caller=None):
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

    def __reduce__(self):
        return (TaskSpec, (self.task_id, self.owner, self.name, self.func_id, self.func_blob,
                           self.args_blob, self.deps, self.num_returns, self.resources,
                           self.max_retries, self.retry_exceptions, self.via_head, self.session,
                           self.node_hint, self.args_ref, self.actor_id, self.caller))

    def return_ids(self):
        return range(self.task_id, self.task_id + self.num_returns)


class ActorSpec:
    """Everything a rank needs to construct an actor, and the head to place it.

    ``actor_id`` is also the id of the actor's *token*, an object owned by the creator that
    every handle holds a ref to: when the last ref anywhere is gone, the actor is released.
    Construction reports to the owner as a task whose one result is that token.
    """
    __slots__ = ("actor_id", "owner", "class_name", "class_id", "class_blob", "args_blob",
                 "deps", "args_ref", "resources", "max_concurrency", "is_async", "name",
                 "namespace", "detached", "session", "methods")

    def __init__(self, actor_id, owner, class_name, class_id, class_blob, args_blob, deps,
                 args_ref, resources, max_concurrency, is_async, name, namespace, detached,
                 session, methods):
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

    def __reduce__(self):
        return (ActorSpec, tuple(getattr(self, name) for name in self.__slots__))
