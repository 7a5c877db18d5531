"""Submission: the one path by which work leaves this rank, and ``put``.

Tasks, actor method calls and actor constructions all go through :meth:`Submitter.submit`:

1. the arguments are serialized (an unpicklable one is named in the error); large buffers go
   into the node's store, as a ``put`` would, and the task reads them there;
2. fresh ids are taken for the results and the spec is made;
3. the task is registered as owned here (``ownership.register_task``): its results pending,
   the arguments this rank owns pinned, the refs inside its arguments held until it is done;
4. the ``ObjectRef``s of its results are made (before anything can arrive);
5. its *router* sends it where it runs and remembers how to cancel it: a :class:`Placement`
   for tasks (on a worker, :class:`NodePlacement`: the least-loaded rank of this node with
   room, read from the node's load table, else spill to the head; on the head, the head's own
   placement, ``head/service.py``), the actor client for calls and constructions
   (``actors/client.py``).

A long burst of submissions also flushes what is queued and takes in results every 16
submissions, so executors are fed while the caller is still submitting.
"""
import sys
import time

from ..exceptions import (ObjectReconstructionFailedMaxAttemptsExceededError,
                          ObjectStoreFullError, OutOfMemoryError, SerializationError,
                          WorkerCrashedError)
from ..wire import messages, serialization
from ..wire.objects import STORED
from ..wire.specs import DYNAMIC, TaskSpec
from . import refcount
from .events import NOT_RECORDING
from .object_ref import ObjectRef
from .resources import fits, infeasibility


class NodePlacement:
    """Where a worker rank sends the tasks it submits: a rank of its own node with room, or
    the head (``SPILL``). The router interface (shared with the head's placement and the
    actor client): ``send(spec) -> rank``, ``cancel(record)``, ``where(record)``."""

    def __init__(self, job, transport, node_load, queue_limit):
        self.job = job
        self.transport = transport
        self.node_load = node_load
        self.queue_limit = queue_limit

    def send(self, spec):
        local = ((spec.node_hint is None or spec.node_hint == self.job.node_index)
                 and spec.strategy is None)    # (strategies are the head's to follow)
        target = None
        if local:
            capacities, request, dead = self.job.capacities, spec.resources, self.transport.dead
            target = self.node_load.pick(self.queue_limit, lambda rank: (
                rank not in dead and fits(capacities[rank], request)))
        if target is None:
            spec.via_head = True
            self.transport.send(0, messages.spill(spec))
            return 0
        spec.via_head = False
        self.node_load.placed(target)          # counted now: the next pick sees it
        self.transport.send(target, messages.task(spec))
        return target

    def cancel(self, record, force=False, recursive=True):
        task_id = record.spec.task_id
        if record.spec.via_head:
            self.transport.send(0, messages.cancel_at_head(task_id, force, recursive))
        else:
            self.transport.send(record.where, messages.cancel(task_id, force, recursive))

    def where(self, record):
        return record.where

    def backlog(self):
        return 0


class Submitter:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``config``, ``transport``,
    ``progress``, ``ownership``, ``refs``, ``access`` (objects fetched here), ``copies``
    (copies held here), this node's ``store``, and ``placement`` (the router of tasks)."""
    events = NOT_RECORDING                  # what this rank records (core/events.py)

    def __init__(self, lock, job, config, transport, progress, ownership, refs, access, copies,
                 store, placement):
        self.lock = lock
        self.job = job
        self.config = config
        self.transport = transport
        self.progress = progress
        self.ownership = ownership
        self.refs = refs
        self.access = access
        self.copies = copies
        self.store = store
        self.placement = placement
        self.feasible = set()                  # resource requests known to fit some rank
        self.submitted = 0

    def set_placement(self, router):
        """Route tasks through ``router`` (the head's own placement, on rank 0)."""
        self.placement = router

    # ------------------------------------------------------------------ the one path
    def submit(self, name, args, kwargs, count, make_spec, router):
        """Submit work: ``make_spec(task_id, deps, args_blob, args_ref)`` makes its TaskSpec
        (``count`` results from ``task_id``), ``router.send(spec)`` sends it. Returns
        ``(spec, [ObjectRef, ...])``. Lock not held.

        Raises:
            SerializationError: an argument cannot be pickled (named).
            RuntimeBrokenError: the runtime is broken.
        """
        deps, args_blob, contained = self._encode_arguments(name, args, kwargs)
        progress = self.progress
        with self.lock:
            if progress.broken is not None:
                progress.check()
            args_ref = None
            if args_blob is not None and args_blob.kind == STORED:
                # Large arguments went into the store, as a put would: the task reads them
                # there (zero-copy on the node), and they are freed when it is done.
                args_ref = self.ownership.add(args_blob)
                deps.append(args_ref)
                args_blob = None
            task_id = self.ownership.new_id(count)
            spec = make_spec(task_id, tuple(deps), args_blob, args_ref)
            returned = [ObjectRef(object_id) for object_id in range(task_id, task_id + count)]
            record = self.ownership.register_task(spec, deps)
            if spec.stream is not None:
                self.ownership.open_stream(task_id, spec.stream == DYNAMIC,
                                           spec.stream if type(spec.stream) is int else None)
            if contained:                      # refs inside the arguments: held until done
                self.refs.hold(contained)
                record.contained = contained
            record.router = router
            if spec.deps and spec.node_hint is None and spec.actor_id is None:
                spec.node_hint = self._node_hint(spec)
            record.where = router.send(spec)
            progress.last_api_call = time.monotonic()
            self.submitted += 1
            if self.submitted & 15 == 0 and (self.transport.queued or self.placement.backlog()):
                progress.turn()
                self.transport.flush()
        return spec, returned

    def _encode_arguments(self, name, args, kwargs):
        """``(deps, args_blob, contained)``: the top-level refs, the encoded arguments, and
        the ids of refs pickled inside them."""
        if not (args or kwargs):
            return [], None, []
        deps = [a.id for a in args if isinstance(a, ObjectRef)]
        deps += [v.id for v in kwargs.values() if isinstance(v, ObjectRef)]
        with refcount.capture("contained") as contained:
            args_blob = serialization.serialize_args(name, args, kwargs, self.store,
                                                     self.job.rank, self.config.inline_limit)
        return deps, args_blob, contained

    def _node_hint(self, spec):
        """The node whose store holds most of the bytes of the arguments this rank knows."""
        weights = {}
        for object_id in spec.deps:
            obj = self.ownership.get(object_id) or self.copies.held_copy(object_id)
            if obj is not None and obj.kind == STORED:
                weights[obj.node] = weights.get(obj.node, 0) + obj.size
        return max(weights, key=weights.get) if weights else None

    # ------------------------------------------------------------------ tasks
    def submit_task(self, name, func_id, func_blob, args, kwargs, num_returns, resources,
                    max_retries=0, retry_exceptions=False, node_hint=None, strategy=None,
                    stream=None, runtime_env=None):
        """Submit a task of a remote function; return the refs of its results (lock not held).

        ``node_hint`` (internal callers, e.g. reductions) names the node it should run on,
        when a rank there has room, instead of the arguments' node. ``strategy``: the
        scheduling strategy, as specs carry it (``wire/specs.py``); ``stream``: a generator
        task's (``STREAMING``, ``DYNAMIC``), whose items this rank then keeps as they come;
        ``runtime_env``: ``core/runtime_env.check``'s, set around the task where it runs.

        A task that no rank could ever run is submitted all the same: it waits at the head,
        as in Ray, after a warning here (:meth:`warn_if_infeasible`).
        """
        key = tuple(resources.items())
        if key not in self.feasible:
            self.warn_if_infeasible(resources, f"task {name}")
            self.feasible.add(key)
        session = self.progress.session

        def make_spec(task_id, deps, args_blob, args_ref):
            return TaskSpec(task_id, self.job.rank, name, func_id, func_blob, args_blob, deps,
                            max(num_returns, 1), resources, max_retries, retry_exceptions,
                            False, session, node_hint=node_hint, args_ref=args_ref,
                            strategy=strategy, stream=stream, runtime_env=runtime_env)
        return self.submit(name, args, kwargs, max(num_returns, 1), make_spec,
                           self.placement)[1]

    def warn_if_infeasible(self, resources, what):
        """Warn on stderr (Ray's "cannot be scheduled" warning) if no executing rank could
        ever satisfy ``resources``; the work is submitted all the same, and waits."""
        problem = infeasibility(self.job.executing_capacities(), resources, what)
        if problem is not None:
            sys.stderr.write(f"hpcray: warning: {problem}\n")
            sys.stderr.flush()
            self.events.note("WARNING", problem)

    # ------------------------------------------------------------------ put
    def put(self, value):
        """Store ``value`` as an object owned here; return its ObjectRef (lock not held).

        Raises:
            SerializationError: ``value`` cannot be pickled.
            ObjectStoreFullError: the store has no room even after spilling.
        """
        progress = self.progress
        if progress.broken is not None:
            progress.check()
        if self.refs.events:                   # free what dropped refs released, first
            with self.lock:
                progress.turn()
        store, rank, limit = self.store, self.job.rank, self.config.inline_limit
        try:
            with refcount.capture("contained") as contained:
                try:
                    obj = serialization.encode(value, store, rank, limit)
                except ObjectStoreFullError:
                    with self.lock:            # frees may be waiting in messages: take them
                        self.progress.turn()
                    del contained[:]
                    obj = serialization.encode(value, store, rank, limit)
        except ObjectStoreFullError:
            raise
        except Exception as error:
            raise SerializationError(f"could not serialize the value given to put(): "
                                     f"{type(error).__name__}: {error}") from error
        with self.lock:
            object_id = self.ownership.add(obj)
            ref = ObjectRef(object_id)
            self.refs.contain(object_id, contained)   # the refs inside live as long as it does
            return ref

    # ------------------------------------------------------------------ dead ranks
    def on_rank_dead(self, rank, tasks):
        """``rank`` died (lock held): the tasks this rank sent there, or that the head placed
        there (``tasks``), run again elsewhere while ``max_retries`` allows (as Ray retries
        a task whose worker or node died); else they fail with WorkerCrashedError."""
        host = self.job.host_of[rank]
        for record in list(self.ownership.tasks.values()):
            spec = record.spec
            if spec.actor_id is None and (record.where == rank or spec.task_id in tasks):
                self.retry(record, f"rank {rank} (host {host}) died while it held the task")
        node = self.job.node_of[rank]
        if all(other in self.transport.dead for other in self.job.ranks_on(node)):
            lost = [object_id for object_id, obj in self.ownership.objects.items()
                    if obj.kind == STORED and obj.node == node]
            for object_id in lost:             # their only copy was there
                self.reconstruct(object_id, node)

    def reconstruct(self, object_id, node):
        """An object of ours stored on ``node``, whose ranks are all dead (lock held): run
        the task that made it again (lineage reconstruction, counted against its
        ``max_retries``), or record it as lost when no task can make it again."""
        obj = self.ownership.get(object_id)
        if obj is None or obj.kind != STORED or obj.node != node:
            return                             # made again already, or being made
        record = self.ownership.reopen(object_id, node)
        hosts = sorted({self.job.host_of[rank] for rank in self.job.ranks_on(node)})
        where = f"node {node} (host {', '.join(hosts)})"
        if record is None:
            self.ownership.replace(object_id, serialization.lost(
                object_id, f"its only copy was in the store of {where}, whose ranks all died, "
                           f"and it was not made by a task of its owner that could run again "
                           f"(a put, or an actor call's result)"))
            return
        self.retry(record, f"the only copy of its result was lost with {where}", lost=True)

    def on_crashed(self, task_id, reason, exit_code, out_of_memory=False):
        """CRASHED: the worker process running a task of ours died: run it again while
        ``max_retries`` allows, else fail it with WorkerCrashedError (OutOfMemoryError when
        the memory monitor ended it)."""
        record = self.ownership.record(task_id)
        if record is not None:
            self.retry(record, reason, exit_code, out_of_memory)

    def retry(self, record, why, exit_code=None, out_of_memory=False, lost=False):
        """Send a task again after a system failure (``lost``: to make its lost result
        again), or fail it if its retries are spent."""
        spec = record.spec
        if spec.max_retries >= 0 and record.attempts > spec.max_retries:
            if lost:
                failure = ObjectReconstructionFailedMaxAttemptsExceededError(
                    f"the result of {spec.name} cannot be made again: {why}, and its "
                    f"max_retries={spec.max_retries} are spent ({record.attempts} attempt(s))")
            elif out_of_memory:
                failure = OutOfMemoryError(spec.name, why, record.attempts)
            else:
                failure = WorkerCrashedError(spec.name, exit_code, reason=why,
                                             attempts=record.attempts)
            error = serialization.exception_object(failure)
            self.ownership.deliver(spec.task_id, [(object_id, error)
                                                  for object_id in spec.return_ids()])
            return
        record.attempts += 1
        self.events.retried(spec, why)
        spec.via_head = False
        record.where = record.router.send(spec)

    # ------------------------------------------------------------------ cancel, locate
    def free(self, object_ids):
        """``internal_api.free`` (lock held)."""
        self.ownership.free_objects(object_ids)

    def cancel(self, object_id, force=False, recursive=True):
        """Cancel the unfinished task that produces ``object_id`` (lock held): its router
        drops it wherever it waits; one that runs gets KeyboardInterrupt or, with
        ``force``, loses its worker process; ``recursive``: the tasks it submitted too."""
        record = self.ownership.pending_task(object_id)
        if record is not None and record.router is not None:
            record.router.cancel(record, force, recursive)

    def locate(self, object_id):
        """The node whose store holds, or will hold, a large object, as far as this rank
        knows (lock held): where it is stored, or the node of the rank its pending task was
        sent to. None for small objects (they travel inline) and unknown ones (a task queued
        at the head; an object owned elsewhere and not fetched)."""
        obj = self.ownership.get(object_id) or self.access.cached(object_id)
        if obj is not None:
            return obj.node if obj.kind == STORED else None
        record = self.ownership.pending_task(object_id)
        if record is None or record.router is None:
            return None
        rank = record.router.where(record)
        if rank is None or rank not in self.job.executors:    # placed by the head, queued
            return None
        return self.job.node_of[rank]

    def forget(self):
        self.feasible = set()
