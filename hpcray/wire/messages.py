"""The protocol: every message kind ranks send each other, in one table, and one constructor
per kind.

A message is a tuple ``(kind, *fields)`` built by the constructor of its kind (below the
table), never by hand. ``TABLE`` is the single source for each kind: its fields by name, who
sends it to whom, which role's method handles it, and whether it belongs to a session.
``core/progress.py`` builds its dispatch from ``TABLE``; ``tests/test_protocol.py`` checks that
every kind has exactly one handler whose parameters are the kind's fields, that each
constructor takes exactly those fields, and that every send site in the package calls a
constructor with the right number of fields. ``docs/architecture.md`` points here instead of
keeping a copy.

On the wire (``transport.py``) messages travel in envelopes ``(session, message)`` or
``(session, [message, ...])``: the sender's session when the message was queued. The receiver
drops a *scoped* message of an older session (work of a job session ended by ``shutdown()``)
and keeps one of a newer session until its own ``RESET`` arrives; unscoped kinds (the job's
lifecycle, copies of stored bytes) are handled whatever their session.

Handlers are named ``role.method``; the roles are the objects of one rank that receive
messages: ``execution``, ``ownership``, ``access``, ``refs``, ``lifecycle``, ``progress``,
``requests``, ``liveness``, ``submitter``, ``output`` (core/), ``copies`` (store/),
``client``, ``host`` (actors/), ``head``, ``directory``, ``groups`` (head/, on rank 0 only).
"""
from dataclasses import dataclass

from .objects import from_wire, to_wire

TAG = 7                 # the MPI tag of runtime messages on the runtime's communicator
DATA_TAG_BASE = 100     # object bytes between nodes travel as raw buffers on tags from here
DATA_TAGS = 30000


@dataclass(frozen=True)
class Kind:
    code: int
    name: str
    fields: tuple       # field names, in order
    route: str          # who sends it to whom
    handler: str        # "role.method" that handles it
    scoped: bool        # belongs to a session (dropped if it is an older one)
    doc: str


TABLE = (
    # ------------------------------------------------------------------ tasks
    Kind(1, "TASK", ("spec",), "owner or head -> executor", "execution.on_task", True,
         "run this TaskSpec"),
    Kind(2, "SPILL", ("spec",), "owner on a worker -> head", "head.on_spill", True,
         "place this task for me (my node has no room)"),
    Kind(3, "RESULT", ("task_id", "results", "seconds", "executor", "contained"),
         "executor -> owner", "ownership.on_result", True,
         "the task's return objects [(object_id, object)], how long it ran (None: it did "
         "not run), the executor rank, {object_id: [ids of refs its pickle holds]} or None"),
    Kind(4, "DONE", ("task_id", "seconds"), "executor -> head", "head.on_done", True,
         "a task the head placed for another owner is over: free its slot"),
    Kind(5, "BLOCKED", ("task_id",), "executor -> head", "head.on_blocked", True,
         "a task waits in get: lend its resources to other tasks"),
    Kind(6, "UNBLOCKED", ("task_id",), "executor -> head", "head.on_unblocked", True,
         "the task runs again"),
    Kind(7, "GET_OBJECT", ("object_id", "requester", "lost_node"), "any -> owner",
         "access.on_get_object", True,
         "send me this object once it exists; lost_node: the copy you sent before was on "
         "that node, whose ranks are all dead (make the object again)"),
    Kind(8, "OBJECT", ("object_id", "obj"), "owner -> requester", "access.on_object", True,
         "the object asked for (an Error record if it is lost)"),
    Kind(9, "CANCEL", ("task_id", "force", "recursive"), "owner or head -> executor",
         "execution.on_cancel", True,
         "drop this task if it has not started; if it runs, interrupt it (KeyboardInterrupt) "
         "or, with force, end its worker process; recursive: cancel what it submitted too"),
    Kind(10, "CANCEL_AT_HEAD", ("task_id", "force", "recursive"), "owner -> head",
         "head.on_cancel", True,
         "drop this task if it waits at the head, else pass the cancel to its executor"),
    Kind(11, "CANCEL_CALL", ("task_id",), "owner -> actor's rank", "host.on_cancel", True,
         "drop this method call if it has not started"),
    # ------------------------------------------------------------------ the job's life
    Kind(12, "SHUTDOWN", (), "head -> workers", "lifecycle.on_shutdown", False,
         "the job is over: say BYE and leave"),
    Kind(13, "RESET", ("session", "capacities"), "head -> workers", "lifecycle.on_reset",
         False, "a new session (shutdown() then init()): forget every object, task and actor"),
    Kind(14, "BYE", ("rank", "pid"), "worker -> head", "head.on_bye", False,
         "acknowledges SHUTDOWN; the worker leaves"),
    Kind(15, "BROKEN", ("rank", "host", "cause"), "any -> every rank", "progress.on_broken",
         False, "an internal fault broke the runtime on that rank: fail every wait"),
    # ------------------------------------------------------------------ stored bytes
    Kind(16, "FETCH", ("slot", "size", "requester", "tag"), "reader -> writer",
         "copies.on_fetch", False,
         "send the bytes of a stored object (raw buffers on tag, tag + 1, ...)"),
    Kind(17, "FREE", ("slot",), "owner -> writer", "ownership.on_free", False,
         "the object is dead: release its slot in your node's store"),
    Kind(18, "RMA_OPEN", ("object_id", "slot", "requester", "requester_leader"),
         "reader -> home node's first rank", "copies.on_rma_open", False,
         "a copy, please (served, or placed by the copy tree)"),
    Kind(19, "RMA_SERVE", ("object_id", "requester", "coordinator"),
         "home -> a node with a copy", "copies.on_rma_serve", False,
         "serve one more copy to requester"),
    Kind(20, "RMA_READY", ("object_id", "start", "source", "source_slot", "coordinator"),
         "server -> reader", "copies.on_rma_ready", False,
         "the object is held in place at page start (None: lost) of source's window: "
         "MPI_Rget it; coordinator: the home rank (None: no tree)"),
    Kind(21, "RMA_CLOSE", ("slot",), "reader -> server", "copies.on_rma_close", False,
         "the Get is done: release the slot"),
    Kind(22, "RMA_DONE", ("object_id", "source", "holder", "requester"), "reader -> home",
         "copies.on_rma_done", False,
         "requester's copy from source is done (or failed); holder (the reader's node's "
         "first rank, None: private copy or failed) may serve the next"),
    Kind(23, "RMA_GONE", ("object_id", "source", "requester"), "server -> home",
         "copies.on_rma_gone", False, "no copy here any more: place requester again"),
    # ------------------------------------------------------------------ references
    Kind(24, "BORROW", ("object_id", "rank"), "borrower -> owner", "refs.on_borrow", True,
         "register rank as a borrower"),
    Kind(25, "ACK", ("object_id",), "owner -> borrower", "refs.on_ack", True,
         "registered"),
    Kind(26, "UNBORROW", ("object_id", "rank"), "borrower -> owner", "refs.on_unborrow", True,
         "the borrower's last instance is gone"),
    Kind(27, "HANDOFF", ("task_id",), "owner -> executor", "refs.on_handoff", True,
         "the refs inside the task's results are held by their new owner: let go"),
    # ------------------------------------------------------------------ actors
    Kind(28, "ACTOR_CREATE", ("spec",), "creator -> head", "directory.on_create", True,
         "place this new actor (ActorSpec)"),
    Kind(29, "ACTOR_START", ("spec",), "head -> host rank", "host.on_start", True,
         "construct the actor here"),
    Kind(30, "ACTOR_PLACED", ("actor_id", "rank", "error"), "head -> callers",
         "client.on_placed", True,
         "the actor lives on rank (or: it is dead, error is what its calls get)"),
    Kind(31, "ACTOR_LOOKUP", ("actor_id", "requester"), "caller -> head",
         "directory.on_lookup", True, "where does this actor live? (ACTOR_PLACED answers)"),
    Kind(32, "ACTOR_CALL", ("spec",), "caller -> host rank", "host.on_call", True,
         "run this method call (a TaskSpec with actor_id)"),
    Kind(33, "ACTOR_RELEASE", ("actor_id",), "owner or head -> host rank",
         "host.on_release", True,
         "every handle is gone: end the actor once its queued calls are done"),
    Kind(34, "ACTOR_RELEASE_AT_HEAD", ("actor_id",), "owner -> head",
         "directory.on_release", True,
         "ACTOR_RELEASE for an actor whose rank the owner does not know yet"),
    Kind(35, "ACTOR_KILL", ("actor_id", "reason", "restart"), "any or head -> host rank",
         "host.on_kill", True,
         "end the actor now (kill); restart: build it again if max_restarts allows"),
    Kind(36, "ACTOR_KILL_AT_HEAD", ("actor_id", "reason", "restart"), "any -> head",
         "directory.on_kill", True, "ACTOR_KILL for an actor whose rank the killer does not know"),
    Kind(37, "ACTOR_GONE", ("actor_id", "reason"), "host rank -> head", "directory.on_gone",
         True, "the actor ended: free its name and resources"),
    # ------------------------------------------------------------------ requests to the head
    Kind(38, "NAME_ACTOR", ("token", "spec", "get_if_exists"), "creator -> head",
         "directory.on_name_actor", True,
         "register a named actor and create it, or answer the live one of that name"),
    Kind(39, "GET_ACTOR", ("token", "name", "namespace"), "any -> head",
         "directory.on_get_actor", True, "the live actor of that name (get_actor)"),
    Kind(41, "GROUP_DECLARE", ("token", "name", "world_size", "members"), "driver -> head",
         "groups.on_declare", True,
         "a collective group of actors: {actor id: group rank} (create_collective_group)"),
    Kind(42, "GROUP_JOIN", ("token", "name", "world_size", "group_rank", "actor_id"),
         "member -> head", "groups.on_join", True,
         "an actor joins a group (init_collective_group)"),
    Kind(43, "GROUP_INFO", ("token", "name", "mpi_rank"), "member's rank -> head",
         "groups.on_info", True,
         "who is in the group, where; mpi_rank (or None) says that rank is ready"),
    Kind(44, "GROUP_DROP", ("token", "name"), "any -> head", "groups.on_drop", True,
         "forget the group"),
    Kind(45, "AVAILABLE", ("token",), "any -> head", "head.on_available", True,
         "logical resources not taken by running or queued work (available_resources)"),
    Kind(46, "REPLY", ("token", "ok", "answer"), "head -> asker", "requests.on_reply", True,
         "the answer to a request (ok False: answer is the exception to raise)"),
    # ------------------------------------------------------------------ dead ranks
    Kind(47, "RANK_LOST", ("rank", "how"), "any rank -> head", "head.on_rank_lost", False,
         "this rank saw rank die (its process is gone, or it stopped answering)"),
    Kind(48, "RANK_DEAD", ("rank", "how", "tasks"), "head -> every live rank",
         "liveness.on_rank_dead", False,
         "rank is dead: never send to it or wait on it again; tasks: ids of the tasks the "
         "head had placed there (their owners run them again)"),
    Kind(49, "HEARTBEAT", ("rank",), "rank on another host <-> head", "liveness.on_heartbeat",
         False, "still alive (the head answers each one)"),
    Kind(50, "CRASHED", ("task_id", "reason", "exit_code", "out_of_memory"),
         "executor -> owner", "submitter.on_crashed", True,
         "the worker process running the task died (reason says how, exit_code is its "
         "status, negative for a signal; out_of_memory: the memory monitor ended it): run it "
         "again or fail it with WorkerCrashedError (OutOfMemoryError)"),
    Kind(51, "GIVE_BACK", ("rank", "specs"), "executor -> head", "head.on_give_back", True,
         "tasks the head placed on rank that found no room there for a while (a long task "
         "holds it): place them elsewhere, and send it no more than it runs at once until "
         "one of its tasks is done"),
    Kind(52, "GEN_ITEM", ("task_id", "index", "obj", "executor", "contained"),
         "executor -> owner", "ownership.on_item", True,
         "item number index of a generator task's stream (an object record; contained: the "
         "ids of refs its pickle holds, or None): the owner gives it an id of its own"),
    Kind(53, "FREE_OBJECT", ("object_id",), "any -> owner", "ownership.on_free_object", True,
         "free this owned object now, whoever refers to it (internal_api.free)"),
    Kind(54, "METRICS", ("taken",), "any rank -> head", "head.on_metrics", True,
         "application metrics recorded on the rank and its worker processes since it last "
         "said (core/metrics.Recorder.take): add them to the job's table"),
    Kind(55, "METRICS_SNAPSHOT", ("token",), "any -> head", "head.on_metrics_snapshot", True,
         "the job's metrics table (answered by REPLY)"),
    Kind(56, "PG_CREATE", ("token", "bundles", "strategy", "name", "owner", "detached"),
         "any -> head", "head.on_pg_create", True,
         "a placement group: answered (REPLY) with its id, and why it can never be placed "
         "(or None)"),
    Kind(57, "PG_REMOVE", ("token", "group_id"), "any -> head", "head.on_pg_remove", True,
         "remove a placement group (answered by REPLY)"),
    Kind(58, "PG_TABLE", ("token", "group_id"), "any -> head", "head.on_pg_table", True,
         "one placement group's description, or all (group_id None)"),
    Kind(59, "PG_GET", ("token", "name"), "any -> head", "head.on_pg_get", True,
         "the description of the placement group of that name"),
    Kind(60, "GEN_CONSUMED", ("task_id", "consumed"), "owner -> executor",
         "execution.on_consumed", True,
         "the caller took this many items of a generator task with back-pressure: it may "
         "go on"),
    # ------------------------------------------------------------------ seeing the job
    Kind(61, "EVENTS", ("rank", "batch"), "any rank -> head", "observer.on_events", True,
         "what the rank recorded since it last said (core/events.EventLog.take): tasks and "
         "calls begun and ended, transfers, get waits, warnings, its load"),
    Kind(62, "OBSERVE", ("token", "what", "options"), "any -> head", "observer.on_observe",
         True, "a view of the job (util.state lists and summaries, the timeline), answered "
         "by REPLY"),
    Kind(63, "OUTPUT", ("rank", "records"), "any rank -> head", "output.on_output", True,
         "what the tasks and actors of rank printed since it last said, and their progress "
         "bars (core/output.py records): shown on the driver's terminal"),
)

BY_CODE = {kind.code: kind for kind in TABLE}

TASK, SPILL, RESULT, DONE, BLOCKED, UNBLOCKED, GET_OBJECT, OBJECT = 1, 2, 3, 4, 5, 6, 7, 8
CANCEL, CANCEL_AT_HEAD, CANCEL_CALL = 9, 10, 11
SHUTDOWN, RESET, BYE, BROKEN = 12, 13, 14, 15
FETCH, FREE, RMA_OPEN, RMA_SERVE, RMA_READY, RMA_CLOSE, RMA_DONE, RMA_GONE = range(16, 24)
BORROW, ACK, UNBORROW, HANDOFF = 24, 25, 26, 27
ACTOR_CREATE, ACTOR_START, ACTOR_PLACED, ACTOR_LOOKUP, ACTOR_CALL = 28, 29, 30, 31, 32
ACTOR_RELEASE, ACTOR_RELEASE_AT_HEAD, ACTOR_KILL, ACTOR_KILL_AT_HEAD, ACTOR_GONE = range(33, 38)
NAME_ACTOR, GET_ACTOR = 38, 39     # (40 was LIST_ACTORS: util.state asks OBSERVE now)
GROUP_DECLARE, GROUP_JOIN, GROUP_INFO, GROUP_DROP, AVAILABLE, REPLY = range(41, 47)
RANK_LOST, RANK_DEAD, HEARTBEAT, CRASHED, GIVE_BACK, GEN_ITEM = 47, 48, 49, 50, 51, 52
FREE_OBJECT, METRICS, METRICS_SNAPSHOT = 53, 54, 55
PG_CREATE, PG_REMOVE, PG_TABLE, PG_GET, GEN_CONSUMED = 56, 57, 58, 59, 60
EVENTS, OBSERVE, OUTPUT = 61, 62, 63


# ---------------------------------------------------------------------- constructors
# One per kind, taking exactly the kind's fields. Object records become plain tuples here
# (objects.to_wire); handlers turn them back (objects.from_wire).
def task(spec):
    return (TASK, spec)


def spill(spec):
    return (SPILL, spec)


def result(task_id, results, seconds, executor, contained):
    if len(results) == 1:                      # most tasks: no comprehension frame
        (object_id, obj), = results
        wire = [(object_id, tuple(obj))]
    else:
        wire = [(object_id, tuple(obj)) for object_id, obj in results]
    return (RESULT, task_id, wire, seconds, executor, contained)


def done(task_id, seconds):
    return (DONE, task_id, seconds)


def blocked(task_id):
    return (BLOCKED, task_id)


def unblocked(task_id):
    return (UNBLOCKED, task_id)


def get_object(object_id, requester, lost_node):
    return (GET_OBJECT, object_id, requester, lost_node)


def object_(object_id, obj):
    return (OBJECT, object_id, to_wire(obj))


def cancel(task_id, force, recursive):
    return (CANCEL, task_id, force, recursive)


def cancel_at_head(task_id, force, recursive):
    return (CANCEL_AT_HEAD, task_id, force, recursive)


def cancel_call(task_id):
    return (CANCEL_CALL, task_id)


def shutdown():
    return (SHUTDOWN,)


def reset(session, capacities):
    return (RESET, session, capacities)


def bye(rank, pid):
    return (BYE, rank, pid)


def broken(rank, host, cause):
    return (BROKEN, rank, host, cause)


def fetch(slot, size, requester, tag):
    return (FETCH, slot, size, requester, tag)


def free(slot):
    return (FREE, slot)


def rma_open(object_id, slot, requester, requester_leader):
    return (RMA_OPEN, object_id, slot, requester, requester_leader)


def rma_serve(object_id, requester, coordinator):
    return (RMA_SERVE, object_id, requester, coordinator)


def rma_ready(object_id, start, source, source_slot, coordinator):
    return (RMA_READY, object_id, start, source, source_slot, coordinator)


def rma_close(slot):
    return (RMA_CLOSE, slot)


def rma_done(object_id, source, holder, requester):
    return (RMA_DONE, object_id, source, holder, requester)


def rma_gone(object_id, source, requester):
    return (RMA_GONE, object_id, source, requester)


def borrow(object_id, rank):
    return (BORROW, object_id, rank)


def ack(object_id):
    return (ACK, object_id)


def unborrow(object_id, rank):
    return (UNBORROW, object_id, rank)


def handoff(task_id):
    return (HANDOFF, task_id)


def actor_create(spec):
    return (ACTOR_CREATE, spec)


def actor_start(spec):
    return (ACTOR_START, spec)


def actor_placed(actor_id, rank, error):
    return (ACTOR_PLACED, actor_id, rank, None if error is None else to_wire(error))


def actor_lookup(actor_id, requester):
    return (ACTOR_LOOKUP, actor_id, requester)


def actor_call(spec):
    return (ACTOR_CALL, spec)


def actor_release(actor_id):
    return (ACTOR_RELEASE, actor_id)


def actor_release_at_head(actor_id):
    return (ACTOR_RELEASE_AT_HEAD, actor_id)


def actor_kill(actor_id, reason, restart):
    return (ACTOR_KILL, actor_id, reason, restart)


def actor_kill_at_head(actor_id, reason, restart):
    return (ACTOR_KILL_AT_HEAD, actor_id, reason, restart)


def actor_gone(actor_id, reason):
    return (ACTOR_GONE, actor_id, reason)


def name_actor(token, spec, get_if_exists):
    return (NAME_ACTOR, token, spec, get_if_exists)


def get_actor(token, name, namespace):
    return (GET_ACTOR, token, name, namespace)




def group_declare(token, name, world_size, members):
    return (GROUP_DECLARE, token, name, world_size, members)


def group_join(token, name, world_size, group_rank, actor_id):
    return (GROUP_JOIN, token, name, world_size, group_rank, actor_id)


def group_info(token, name, mpi_rank):
    return (GROUP_INFO, token, name, mpi_rank)


def group_drop(token, name):
    return (GROUP_DROP, token, name)


def available(token):
    return (AVAILABLE, token)


def reply(token, ok, answer):
    return (REPLY, token, ok, answer)


def rank_lost(rank, how):
    return (RANK_LOST, rank, how)


def rank_dead(rank, how, tasks):
    return (RANK_DEAD, rank, how, tasks)


def heartbeat(rank):
    return (HEARTBEAT, rank)


def crashed(task_id, reason, exit_code, out_of_memory):
    return (CRASHED, task_id, reason, exit_code, out_of_memory)


def give_back(rank, specs):
    return (GIVE_BACK, rank, specs)


def gen_consumed(task_id, consumed):
    return (GEN_CONSUMED, task_id, consumed)


def events(rank, batch):
    return (EVENTS, rank, batch)


def observe(token, what, options):
    return (OBSERVE, token, what, options)


def output(rank, records):
    return (OUTPUT, rank, records)


def pg_create(token, bundles, strategy, name, owner, detached):
    return (PG_CREATE, token, bundles, strategy, name, owner, detached)


def pg_remove(token, group_id):
    return (PG_REMOVE, token, group_id)


def pg_table(token, group_id):
    return (PG_TABLE, token, group_id)


def pg_get(token, name):
    return (PG_GET, token, name)


def metrics(taken):
    return (METRICS, taken)


def metrics_snapshot(token):
    return (METRICS_SNAPSHOT, token)


def free_object(object_id):
    return (FREE_OBJECT, object_id)


def gen_item(task_id, index, obj, executor, contained):
    return (GEN_ITEM, task_id, index, tuple(obj), executor, contained)


# The constructor of each kind (tests check the pairing; ``object_`` avoids the builtin).
CONSTRUCTORS = {
    TASK: task, SPILL: spill, RESULT: result, DONE: done, BLOCKED: blocked,
    UNBLOCKED: unblocked, GET_OBJECT: get_object, OBJECT: object_, CANCEL: cancel,
    CANCEL_AT_HEAD: cancel_at_head, CANCEL_CALL: cancel_call, SHUTDOWN: shutdown,
    RESET: reset, BYE: bye, BROKEN: broken, FETCH: fetch, FREE: free, RMA_OPEN: rma_open,
    RMA_SERVE: rma_serve, RMA_READY: rma_ready, RMA_CLOSE: rma_close, RMA_DONE: rma_done,
    RMA_GONE: rma_gone, BORROW: borrow, ACK: ack, UNBORROW: unborrow, HANDOFF: handoff,
    ACTOR_CREATE: actor_create, ACTOR_START: actor_start, ACTOR_PLACED: actor_placed,
    ACTOR_LOOKUP: actor_lookup, ACTOR_CALL: actor_call, ACTOR_RELEASE: actor_release,
    ACTOR_RELEASE_AT_HEAD: actor_release_at_head, ACTOR_KILL: actor_kill,
    ACTOR_KILL_AT_HEAD: actor_kill_at_head, ACTOR_GONE: actor_gone, NAME_ACTOR: name_actor,
    GET_ACTOR: get_actor, GROUP_DECLARE: group_declare,
    GROUP_JOIN: group_join, GROUP_INFO: group_info, GROUP_DROP: group_drop,
    AVAILABLE: available, REPLY: reply, RANK_LOST: rank_lost, RANK_DEAD: rank_dead,
    HEARTBEAT: heartbeat, CRASHED: crashed, GIVE_BACK: give_back, GEN_ITEM: gen_item,
    FREE_OBJECT: free_object, METRICS: metrics, METRICS_SNAPSHOT: metrics_snapshot,
    PG_CREATE: pg_create, PG_REMOVE: pg_remove, PG_TABLE: pg_table, PG_GET: pg_get,
    GEN_CONSUMED: gen_consumed, EVENTS: events, OBSERVE: observe, OUTPUT: output,
}


def error_from_wire(raw):
    """An error record carried in a field (ACTOR_PLACED's ``error``), or None."""
    return None if raw is None else from_wire(raw)
