"""The messages between a rank and its worker processes: plain tuples ``(kind, *fields)``,
built by the constructors below.

Rank -> worker:

* ``RUN (spec, deps, ahead)``: run this task; ``deps`` maps each argument object's id to
  ``(record, first page)`` (the page is set for stored objects, pinned for the worker);
  ``ahead``: sent before its turn, it runs after the task running now (short tasks are
  streamed to busy processes, so that a process never waits for the rank between two);
* ``REPLY (req_id, ok, payload, pins)``: the answer to a ``CALL`` (a pickled value, or the
  pickled exception to raise); ``pins`` lists ``(slot, count)`` pinned for the worker with it;
* ``ACTOR_NEW (spec, deps)`` / ``ACTOR_CALL (spec, deps)`` / ``ACTOR_END (actor_id)``: an
  actor to build here, a call to run, an actor to drop;
* ``EXIT ()``: leave now;
* ``INTERRUPT (task_id)``: raise KeyboardInterrupt in the thread running that task (a
  ``SIGINT`` follows, to end a sleep of the main thread);
* ``CANCEL_CALL (task_id)``: drop that actor call if it waits behind its actor's running
  call (its ``DONE`` then carries the cancelled error); one that runs finishes.

Worker -> rank:

* ``DONE (task_id, results, seconds, contained, written)``: a task or call is over; its
  results as wire records, the refs their pickles hold, the store slots it wrote;
* ``CALL (req_id, op, args, task_id)``: the runtime's help for the code running task
  ``task_id`` (``get``, ``put``, ``submit``...: see ``pool.WorkerPool.OPS``);
* ``FORGET (req_id)``: the caller gave up waiting (a ``get`` timed out);
* ``DROP (pairs)``: ``[(object id, count)]`` refs the worker no longer holds;
* ``UNPIN (slots)``: views of stored objects that died;
* ``ESCAPE (object_id)``: a ref was pickled outside a tracked path (keep it for good);
* ``ACTOR_EXIT (task_id, reason)``: the call ``task_id`` ended its actor (``exit_actor``,
  ``sys.exit``); the call has no results;
* ``ITEM (task_id, index, obj, contained, written)``: a generator task yielded item
  ``index`` (a wire record; the ids of the refs its pickle holds; the store slots it wrote);
* ``METRICS (taken)``: application metrics recorded here since the last (ahead of the
  message they come with: ``core/metrics.py``);
* ``OUTPUT (records)``: what the process printed, and its progress bars (ahead of the
  message they come with, or alone after 0.2 s: ``core/output.py``).
"""
# rank -> worker
RUN, REPLY, ACTOR_NEW, ACTOR_CALL, ACTOR_END, EXIT, INTERRUPT, CANCEL_CALL = range(8)
# worker -> rank
DONE, CALL, FORGET, DROP, UNPIN, ESCAPE, ACTOR_EXIT, ITEM, METRICS, OUTPUT = range(10)


# One constructor per kind (as in wire/messages.py: no message tuple is built by hand).
def run(spec, deps, ahead=False):
    return (RUN, spec, deps, ahead)


def reply(req_id, ok, payload, pins):
    return (REPLY, req_id, ok, payload, pins)


def actor_new(spec, deps):
    return (ACTOR_NEW, spec, deps)


def actor_call(spec, deps):
    return (ACTOR_CALL, spec, deps)


def actor_end(actor_id):
    return (ACTOR_END, actor_id)


def exit_():
    return (EXIT,)


def interrupt(task_id):
    return (INTERRUPT, task_id)


def cancel_call(task_id):
    return (CANCEL_CALL, task_id)


def done(task_id, results, seconds, contained, written):
    return (DONE, task_id, results, seconds, contained, written)


def item(task_id, index, obj, contained, written):
    return (ITEM, task_id, index, obj, contained, written)


def metrics(taken):
    return (METRICS, taken)


def output(records):
    return (OUTPUT, records)


def actor_exit(task_id, reason):
    return (ACTOR_EXIT, task_id, reason)


def call(req_id, op, args, task_id):
    return (CALL, req_id, op, args, task_id)


def forget(req_id):
    return (FORGET, req_id)


def drop(pairs):
    return (DROP, pairs)


def unpin(slots):
    return (UNPIN, slots)


def escape(object_id):
    return (ESCAPE, object_id)
