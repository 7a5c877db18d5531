"""The public functions of hpcray, with Ray's names and semantics."""
import inspect
import sys

from . import job, refs, runtime, serialization
from .config import Config
from .context import RuntimeContext
from .exceptions import ActorDiedError, ObjectStoreFullError, SerializationError
from .object_ref import ObjectRef
from .actor import ActorClass, ActorHandle
from .protocol import ActorSpec, TaskSpec
from .remote_function import RemoteFunction
from .scheduler import check_feasible

# Arguments of ray.init that have nothing to configure under MPI; accepted so programs run.
_IGNORED_INIT_ARGS = {
    "include_dashboard", "dashboard_host", "dashboard_port", "log_to_driver", "logging_level",
    "logging_format", "configure_logging", "runtime_env", "local_mode", "_temp_dir",
    "_system_config", "job_config", "_node_ip_address", "storage", "_plasma_directory",
    "_metrics_export_port", "_enable_object_reconstruction", "labels", "_redis_password",
    "enable_resource_isolation", "_tracing_startup_hook", "_skip_env_hook",
}


def init(address=None, *, num_cpus=None, num_gpus=None, resources=None,
         object_store_memory=None, ignore_reinit_error=False, namespace=None, **kwargs):
    """Start hpcray in this process, or attach to the MPI job it runs in.

    Under ``python -m hpcray`` (mpirun/srun) the job already runs: ``init`` attaches to it.
    In a plain ``python script.py`` it starts the embedded default: a local job of worker
    processes spawned with MPI, one per logical CPU.

    Args:
        address: ``None``, ``"auto"`` or ``"local"``. hpcray has no cluster address: the
            cluster is the MPI job.
        num_cpus: logical CPUs of the job. Embedded: the number of workers to start (default:
            ``HPCRAY_NUM_WORKERS``, the machine's cores). Attached: divided evenly among the
            worker ranks (default: ``HPCRAY_CPUS_PER_RANK`` each).
        num_gpus: logical GPUs of the job, divided evenly among the worker ranks.
        resources: custom logical resources ``{name: amount}``, job totals divided evenly
            among the worker ranks.
        object_store_memory: bytes of each node's object store (an int, or "2G"). It sizes
            the stores of the embedded default; a launched job's stores exist before the
            script runs, so there use ``--object-store-memory`` or
            ``HPCRAY_OBJECT_STORE_MEMORY`` (a different value here raises ValueError).
        ignore_reinit_error: do not raise if hpcray is already initialized.
        namespace: namespace for named actors.
        **kwargs: Ray's other ``init`` arguments (dashboard, logging, runtime_env, ...) are
            accepted and have no effect: there is no dashboard and no daemon to configure.

    Returns:
        A dict describing the job (``{"rank", "world_size", "mode", ...}``).

    Raises:
        RuntimeError: already initialized and ``ignore_reinit_error`` is false.
        ValueError: an address that names a cluster, or bad resource amounts.
        TypeError: an argument that Ray's ``init`` does not have either.
    """
    unknown = set(kwargs) - _IGNORED_INIT_ARGS
    if unknown:
        raise TypeError(f"init() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    if address not in (None, "auto", "local") and not str(address).startswith("local"):
        raise ValueError(f"address={address!r}: hpcray has no cluster address; its cluster is "
                         f"the MPI job (start it with 'mpirun ... python -m hpcray script.py')")
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if job.state.initialized:
        if ignore_reinit_error:
            return _describe()
        raise RuntimeError("hpcray.init() was already called; call hpcray.shutdown() first, or "
                           "pass ignore_reinit_error=True")
    declared = job.declared_resources(num_cpus, num_gpus, resources)
    rt = runtime._instance
    if rt is None:
        if job.launched_by_mpi():
            _join_launched_job(declared)
        else:
            config = Config.from_env()
            workers = int(num_cpus) if num_cpus else config.num_workers
            if workers < 1:
                raise ValueError("the embedded default needs at least one worker (num_cpus >= 1)")
            memory = None
            if object_store_memory is not None:
                from .config import parse_bytes
                memory = parse_bytes(object_store_memory, "object_store_memory")
            job.start_embedded(config, workers, declared, memory)
    elif job.state.mode == "launched":
        if object_store_memory is not None and rt.store is not None:
            from .config import parse_bytes
            if parse_bytes(object_store_memory, "object_store_memory") != rt.store.capacity:
                raise ValueError(
                    f"object_store_memory={object_store_memory!r}: this job's stores already "
                    f"exist ({rt.store.capacity:,} bytes per node); size them with "
                    f"'python -m hpcray --object-store-memory ...' or HPCRAY_OBJECT_STORE_MEMORY")
        if declared:
            rt.reset_session(_capacities_with(rt, declared))
    job.state.initialized = True
    job.state.namespace = namespace
    job.state.object_store_memory = object_store_memory
    if job.state.mode != "launched" or rt is None:    # we run the script's process: handle
        import atexit                                 # Slurm's stop signals here
        from . import preemption
        preemption.install_on_head()
        atexit.register(preemption.at_exit(lambda: runtime._instance))
    return _describe()


def _capacities_with(rt, declared):
    from .resources import with_declared
    return {rank: with_declared(capacity, declared, len(rt.executors))
            for rank, capacity in rt.detected_capacities.items()}


def _join_launched_job(declared):
    """``mpiexec python script.py`` without ``-m hpcray``: rank 0 continues, others serve."""
    MPI = job.import_mpi()
    config = Config.from_env()
    comm = MPI.COMM_WORLD.Dup()
    rt = job.start_runtime(comm, config, declared, on_exit=job.worker_exit_hard)
    job.state.mode = "launched"
    if rt.rank != 0:
        from .preemption import ignore_on_worker
        ignore_on_worker()
        job.serve(rt)
        rt.close()
        MPI.Finalize()
        sys.exit(0)
    rt.in_user_code = True
    import atexit
    atexit.register(lambda: _finish_at_exit(rt))


def _finish_at_exit(rt):
    job.finish_launched(rt, 1 if getattr(sys, "last_value", None) is not None else 0)


def _describe():
    rt = runtime.get_runtime()
    return {"rank": rt.rank, "world_size": rt.size, "mode": job.state.mode,
            "node_id": RuntimeContext(rt).get_node_id(), "session": rt.session}


def is_initialized():
    """Whether ``init`` was called (or implied by a first task) and not shut down since."""
    return job.state.initialized


def shutdown():
    """End the current session: forget its objects; the embedded default stops its workers.

    Under ``python -m hpcray`` the job's ranks stay up (the job is the cluster) and a later
    ``init()`` starts a fresh session on them, as a new ``ray.init()`` would.
    """
    rt = runtime._instance
    if rt is None or not job.state.initialized and job.state.mode != "embedded":
        job.state.initialized = False
        return
    if job.state.mode == "embedded":
        job.stop_embedded()
    else:
        rt.reset_session()
    job.state.initialized = False


def _runtime():
    if not job.state.initialized:
        init()
    return runtime._instance


def remote(*args, **options):
    """Turn a function into a remote function, or a class into an actor class
    (``@remote`` or ``@remote(num_returns=2, ...)``, ``@remote(num_cpus=1, max_concurrency=4)``).

    Returns:
        A :class:`RemoteFunction` whose ``.remote(...)`` submits a task, or an
        :class:`ActorClass` whose ``.remote(...)`` creates an actor.
    """
    if len(args) == 1 and not options and callable(args[0]):
        return _make_remote(args[0], {})
    if args:
        raise TypeError("@remote takes either a function or keyword options only")

    def decorator(target):
        return _make_remote(target, options)
    return decorator


def _make_remote(target, options):
    if inspect.isclass(target):
        return ActorClass(target, options)
    if not callable(target):
        raise TypeError(f"@remote needs a function, got {target!r}")
    return RemoteFunction(target, options)


def _encode_arguments(rt, name, args, kwargs):
    """``(deps, args_blob, contained)``: the top-level refs, the encoded arguments, and the
    ids of refs pickled inside them."""
    if not (args or kwargs):
        return [], None, []
    deps = [a.id for a in args if isinstance(a, ObjectRef)]
    deps += [v.id for v in kwargs.values() if isinstance(v, ObjectRef)]
    with refs.capture("contained") as contained:
        args_blob = serialization.serialize_args(name, args, kwargs, rt.store, rt.rank,
                                                 rt.config.inline_limit)
    return deps, args_blob, contained


def _store_large_arguments(rt, deps, args_blob):
    """Large arguments went into the store, as a put would: the task reads them there
    (zero-copy on the node), and they are freed when it is done. Returns (args_blob, ref)."""
    if args_blob is not None and args_blob[0] == serialization.STORED:
        args_ref = rt.put_object(args_blob)
        deps.append(args_ref)
        return None, args_ref
    return args_blob, None


def submit_task(function, args, kwargs, node_hint=None):
    """Submit a task of ``function``; ``node_hint`` (internal callers, e.g. reductions) names
    the node it should run on, when a rank there has room, instead of the arguments' node."""
    rt = _runtime()
    options = function._options
    num_returns = options.get("num_returns", 1)
    request = function._request
    func_blob, func_id = function.exported()
    deps, args_blob, contained = _encode_arguments(rt, function._name, args, kwargs)
    count = max(num_returns, 1)
    with rt.lock:
        args_blob, args_ref = _store_large_arguments(rt, deps, args_blob)
        task_id = rt.new_id(count)
        returned = [ObjectRef(task_id + index) for index in range(count)]
        spec = TaskSpec(task_id, rt.rank, function._name, func_id, func_blob, args_blob,
                        tuple(deps), count, request, options.get("max_retries", 0),
                        options.get("retry_exceptions", False), False, rt.session,
                        node_hint=node_hint, args_ref=args_ref)
        rt.submit(spec, deps)
        if contained:                          # refs inside the arguments: held until done
            rt.refs.hold(contained)
            rt.tasks[task_id].contained = contained
    if num_returns == 0:
        return None
    return returned[0] if num_returns == 1 else returned


def reduce(object_refs, op="sum"):
    """Combine many objects into one, where they live; return an ObjectRef to the result.

    The objects of each node are combined there first (one task per node, reading them in
    place), then the nodes' results pairwise in a tree (``ceil(log2(nodes))`` levels, each
    pair on its left input's node, so the right one moves once). Nothing is gathered on one
    rank, and nothing waits: inputs may be tasks still running.

    Args:
        object_refs: a list (or tuple) of ObjectRefs; one ref (alone, or in a list) gives a
            ref to a copy of its value.
        op: ``"sum"``, ``"prod"``, ``"min"`` or ``"max"`` (numpy's ``add``, ``multiply``,
            ``minimum``, ``maximum``, with numpy's broadcasting rules; two plain Python
            ints or floats combine with Python's arithmetic, so ints stay exact), or any binary
            callable ``op(a, b)`` (``np.maximum``, ``operator.add``, a lambda). It must be
            associative and commutative: the order in which inputs meet depends on where
            they live.

    Returns:
        An ObjectRef to the reduction. ``get`` on it raises the error of an input whose task
        failed (a TaskError that is also an instance of the original exception), and
        ValueError for arrays that do not broadcast together (e.g. different lengths).

    Raises:
        TypeError: something other than ObjectRefs, or an op that is neither a known name
            nor callable.
        ValueError: an empty list, or an unknown op name.
    """
    from . import reduction
    return reduction.reduce(object_refs, op)


def create_actor(actor_class, args, kwargs):
    """``ActorClass.remote(...)``: send the actor to the head for placement; return its handle
    at once (a named actor waits for the head to accept the name)."""
    rt = _runtime()
    options = actor_class._options
    request = actor_class._request
    check_feasible({rank: rt.capacities[rank] for rank in rt.executors}, request,
                   f"actor {actor_class._name}")
    blob, class_id = actor_class.exported()
    name = options.get("name")
    detached = options.get("lifetime") == "detached"
    deps, args_blob, contained = _encode_arguments(rt, f"{actor_class._name}.__init__", args,
                                                   kwargs)
    with rt.lock:
        args_blob, args_ref = _store_large_arguments(rt, deps, args_blob)
        actor_id = rt.new_id()
        spec = ActorSpec(actor_id, rt.rank, actor_class._name, class_id, blob, args_blob,
                         tuple(deps), args_ref, request, actor_class.concurrency(),
                         actor_class._is_async, name, options.get("namespace"), detached,
                         rt.session, actor_class._methods)
        token = ObjectRef(actor_id)
        rt.submit_actor(spec, deps)
        if contained:
            rt.refs.hold(contained)
            rt.tasks[actor_id].contained = contained
        if detached:
            rt.escaped.add(actor_id)           # no count of handles ends it
        if name is None:
            rt.actor_client.create(spec)
    if name is not None:
        try:
            status, info = rt.ask_head("create_named", spec, bool(options.get("get_if_exists")))
        except BaseException:
            with rt.lock:
                rt.abandon_actor(spec)
            raise
        if status == "exists":
            with rt.lock:
                rt.abandon_actor(spec)
            return _handle_of(rt, info)
    return ActorHandle(token, actor_class._name, actor_class._methods, actor_class._is_async,
                       (rt.job_tag, rt.session))


def _handle_of(rt, info):
    """A handle to an actor described by the head: its token is borrowed like a received ref."""
    from .object_ref import _rebuild
    actor_id, class_name, methods, is_async = info
    with refs.capture("borrowed") as borrowed:
        token = _rebuild(actor_id)
    rt.await_borrows(borrowed)
    return ActorHandle(token, class_name, methods, is_async, (rt.job_tag, rt.session))


def call_actor(handle, method_name, num_returns, args, kwargs):
    """``handle.method.remote(...)``: submit a call; return its ObjectRef(s)."""
    rt = _runtime()
    name = f"{handle._class_name}.{method_name}"
    if handle._session != (rt.job_tag, rt.session):
        raise ActorDiedError(handle._class_name, f"{handle._actor_id:016x}",
                             "it belonged to an earlier session, ended by hpcray.shutdown()")
    deps, args_blob, contained = _encode_arguments(rt, name, args, kwargs)
    count = max(num_returns, 1)
    stack = getattr(rt.tls, "stack", None)
    caller = (rt.rank, stack[-1].task_id if stack else 0)
    with rt.lock:
        args_blob, args_ref = _store_large_arguments(rt, deps, args_blob)
        task_id = rt.new_id(count)
        returned = [ObjectRef(task_id + index) for index in range(count)]
        spec = TaskSpec(task_id, rt.rank, name, method_name, None, args_blob, tuple(deps),
                        count, {}, 0, False, False, rt.session, args_ref=args_ref,
                        actor_id=handle._token.id, caller=caller)
        rt.submit_call(spec, deps)
        if contained:
            rt.refs.hold(contained)
            rt.tasks[task_id].contained = contained
        if rt.submitted & 15 == 0 and rt.transport.queued:
            rt.progress()
            rt.transport.flush()
        rt.submitted += 1
    if num_returns == 0:
        return None
    return returned[0] if num_returns == 1 else returned


def kill(actor, *, no_restart=True):
    """End an actor now: its waiting and running calls, and any later ones, raise
    ActorDiedError. (``no_restart`` is accepted: hpcray never restarts actors.)"""
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"kill expects an actor handle, got {type(actor).__name__}")
    rt = _runtime()
    with rt.lock:
        rt.actor_client.kill(actor._actor_id, "it was killed by hpcray.kill()")
        rt.transport.flush()


def get_actor(name, namespace=None):
    """The handle of the live actor registered under ``name`` (in ``namespace``, by default
    the job's). Raises ValueError if there is none."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"get_actor needs a non-empty name, got {name!r}")
    rt = _runtime()
    return _handle_of(rt, rt.ask_head("get_actor", name, namespace))


def _check_refs(refs, what):
    for ref in refs:
        if not isinstance(ref, ObjectRef):
            raise TypeError(f"{what} expects ObjectRefs, got {type(ref).__name__}: {ref!r}")


def get(object_refs, *, timeout=None):
    """Return the value of an ObjectRef, or a list of values for a list of refs.

    Args:
        object_refs: an ObjectRef or a list/tuple of them.
        timeout: seconds to wait at most; ``None`` waits until the values exist.

    Raises:
        GetTimeoutError: (a ``TimeoutError``) the values were not ready in time.
        TaskError: the task failed; the error is also an instance of the original exception
            class and carries the remote traceback (rank and host).
        TaskCancelledError: the task was cancelled.
        TypeError: something other than ObjectRefs was passed.
    """
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError(f"timeout must be None or a non-negative number, got {timeout!r}")
    single = isinstance(object_refs, ObjectRef)
    object_refs_list = [object_refs] if single else object_refs
    if not isinstance(object_refs_list, (list, tuple)):
        raise TypeError(f"get expects an ObjectRef or a list of ObjectRefs, got "
                        f"{type(object_refs).__name__}")
    _check_refs(object_refs_list, "get")
    rt = _runtime()
    objects = rt.get_objects([ref.id for ref in object_refs_list], timeout)
    with refs.capture("borrowed") as borrowed:
        values = [serialization.materialize(obj, rt.store) for obj in objects]
    rt.await_borrows(borrowed)                # refs inside the values: register first
    return values[0] if single else values


def put(value):
    """Store ``value`` as an object owned by this process; return its ObjectRef.

    Raises:
        TypeError: ``value`` is already an ObjectRef.
        SerializationError: ``value`` cannot be pickled.
    """
    if isinstance(value, ObjectRef):
        raise TypeError("put() of an ObjectRef is not allowed; pass the ref itself instead")
    rt = _runtime()
    if rt.ref_events:
        with rt.lock:                          # free what dropped refs released, first
            rt.progress()
    try:
        with refs.capture("contained") as contained:
            try:
                obj = serialization.encode(value, rt.store, rt.rank, rt.config.inline_limit)
            except ObjectStoreFullError:
                with rt.lock:                  # frees may be waiting in messages: take them
                    rt.progress()
                del contained[:]
                obj = serialization.encode(value, rt.store, rt.rank, rt.config.inline_limit)
    except ObjectStoreFullError:
        raise
    except Exception as error:
        raise SerializationError(f"could not serialize the value given to put(): "
                                 f"{type(error).__name__}: {error}") from error
    with rt.lock:
        object_id = rt.put_object(obj)
        ref = ObjectRef(object_id)
        rt.refs.contain(object_id, contained)  # the refs inside live as long as it does
        return ref


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """Wait until ``num_returns`` of the refs are ready, or the timeout passes.

    Returns:
        ``(ready, not_ready)``: two lists of refs, each in the order of ``object_refs``;
        ``ready`` holds at most ``num_returns`` refs.

    Raises:
        TypeError: not a list of ObjectRefs.
        ValueError: duplicate refs, or ``num_returns`` out of range.
    """
    if isinstance(object_refs, ObjectRef) or not isinstance(object_refs, (list, tuple)):
        raise TypeError("wait expects a list of ObjectRefs")
    _check_refs(object_refs, "wait")
    if len(set(object_refs)) != len(object_refs):
        raise ValueError("wait received duplicate ObjectRefs")
    if not isinstance(num_returns, int) or num_returns < 1 and object_refs:
        raise ValueError(f"num_returns must be a positive int, got {num_returns!r}")
    if num_returns > len(object_refs):
        raise ValueError(f"num_returns ({num_returns}) exceeds the number of refs "
                         f"({len(object_refs)})")
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be None or non-negative")
    if not object_refs:
        return [], []
    rt = _runtime()
    ready_ids = rt.ready_set([ref.id for ref in object_refs], num_returns, timeout)
    ready, not_ready = [], []
    for ref in object_refs:
        (ready if ref.id in ready_ids and len(ready) < num_returns else not_ready).append(ref)
    return ready, not_ready


def cancel(object_ref, *, force=False, recursive=True):
    """Cancel the task that produces ``object_ref`` if it has not started yet.

    A cancelled task's ``get`` raises TaskCancelledError. A task already running finishes
    (``force`` is accepted for compatibility).
    """
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(f"cancel expects an ObjectRef, got {type(object_ref).__name__}")
    rt = _runtime()
    with rt.lock:
        rt.cancel(object_ref.id)
        rt.transport.flush()


def get_gpu_ids():
    """The ids of the GPUs pinned to this rank (its ``CUDA_VISIBLE_DEVICES``), as Ray's
    ``get_gpu_ids``: in a ``num_gpus=1`` task, the one GPU it may use; ``[]`` without GPUs."""
    _runtime()
    from .resources import gpu_ids
    return gpu_ids()


def get_runtime_context():
    """Return a RuntimeContext: rank, node id, task id of the calling code."""
    return RuntimeContext(_runtime())


def cluster_resources():
    """Total logical resources of the job's executing ranks, e.g. ``{"CPU": 4.0}``."""
    rt = _runtime()
    total = {}
    for rank in rt.executors:
        for name, amount in rt.capacities[rank].items():
            total[name] = total.get(name, 0.0) + amount
    return total


def available_resources():
    """Logical resources not taken by running or queued tasks (the head's view)."""
    rt = _runtime()
    total = cluster_resources()
    if rt.scheduler is None:
        return total
    with rt.lock:
        for used in rt.scheduler.used.values():
            for name, amount in used.items():
                total[name] = max(total.get(name, 0.0) - amount, 0.0)
    return total


def nodes():
    """One dict per node of the job: id, host, ranks and logical resources (Ray's keys)."""
    from .context import node_id
    rt = _runtime()
    result = []
    for index in sorted(set(rt.node_of)):
        ranks = [rank for rank, node in enumerate(rt.node_of) if node == index]
        resources = {}
        for rank in ranks:
            for name, amount in rt.capacities[rank].items():
                resources[name] = resources.get(name, 0.0) + amount
        result.append({"NodeID": node_id(rt, index), "Alive": True,
                       "NodeManagerHostname": rt.host_of[ranks[0]], "Resources": resources,
                       "Ranks": ranks})
    return result
