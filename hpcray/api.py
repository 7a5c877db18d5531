"""The public functions of hpcray, with Ray's names and semantics.

A thin layer: each function checks its arguments as Ray does, then asks the runtime's roles
(``core/``, ``actors/``) through their named methods; ``launch/session.py`` starts the runtime.
"""
import inspect

from . import reduction
from .actor import ActorClass, ActorHandle, actor_id_of
from .context import RuntimeContext
from .core.generators import ObjectRefGenerator
from .core.object_ref import ObjectRef
from .core.resources import add_up
from .core.runtime_env import check as check_runtime_env
from .launch import resources as _resources
from .launch import session
from .remote_function import RemoteFunction
from .scheduling import executing_node
from .wire import messages

# Arguments of ray.init that have nothing to configure under MPI; accepted so programs run.
_IGNORED_INIT_ARGS = {
    "include_dashboard", "dashboard_host", "dashboard_port", "logging_level",
    "logging_format", "configure_logging", "local_mode", "_temp_dir",
    "_system_config", "job_config", "_node_ip_address", "storage", "_plasma_directory",
    "_metrics_export_port", "_enable_object_reconstruction", "labels", "_redis_password",
    "enable_resource_isolation", "_tracing_startup_hook", "_skip_env_hook",
}


def init(address=None, *, num_cpus=None, num_gpus=None, resources=None,
         object_store_memory=None, ignore_reinit_error=False, namespace=None,
         runtime_env=None, log_to_driver=True, **kwargs):
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
        num_gpus: logical GPUs of the job, dealt to the worker ranks in whole units.
        resources: custom logical resources ``{name: amount}``, job totals dealt to the
            worker ranks as num_gpus is.
        object_store_memory: bytes of each node's object store (an int, or "2G"). It sizes
            the stores of the embedded default; a launched job's stores exist before the
            script runs, so there use ``--object-store-memory`` or
            ``HPCRAY_OBJECT_STORE_MEMORY`` (a different value here raises ValueError).
        ignore_reinit_error: do not raise if hpcray is already initialized.
        namespace: namespace for named actors.
        runtime_env: Ray's, for every task and actor of the job (theirs win): ``env_vars``,
            and ``working_dir`` / ``py_modules`` as local paths.
        log_to_driver: show what tasks and actors print on the driver's stdout and stderr
            (prefixed ``(f pid=..., rank=..., node=...)``, as Ray does); False: only in the
            ranks' log files of the job directory.
        **kwargs: Ray's other ``init`` arguments (dashboard, logging, ...) are
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
    job_env = check_runtime_env(runtime_env, "init(runtime_env=)")
    if session.initialized():
        if ignore_reinit_error:
            return session.describe()
        raise RuntimeError("hpcray.init() was already called; call hpcray.shutdown() first, or "
                           "pass ignore_reinit_error=True")
    session.init(session.declare(num_cpus, num_gpus, resources), num_cpus,
                 object_store_memory, namespace)
    session.state.runtime_env = job_env
    output = getattr(session.runtime(), "output", None)
    if output is not None:                     # (the driver's: inside a task there is none)
        output.set_log_to_driver(log_to_driver)
    return session.describe()


def is_initialized():
    """Whether ``init`` was called (or implied by a first task) and not shut down since
    (always, inside a task or actor)."""
    return session.initialized()


def shutdown():
    """End the current session: forget its objects; the embedded default stops its workers.

    Under ``python -m hpcray`` the job's ranks stay up (the job is the cluster) and a later
    ``init()`` starts a fresh session on them, as a new ``ray.init()`` would.
    """
    session.shutdown()


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
    return reduction.reduce(object_refs, op)




def kill(actor, *, no_restart=True):
    """End an actor now: its waiting and running calls, and any later ones, raise
    ActorDiedError. With ``no_restart=False``, as in Ray, the actor is built again instead
    when its ``max_restarts`` allows (its calls then behave as after a crash: see
    ``ActorUnavailableError``); out of restarts, it ends for good.

    Raises:
        TypeError: ``actor`` is not an actor handle.
    """
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"kill expects an actor handle, got {type(actor).__name__}")
    rt = session.runtime()
    with rt.lock:
        rt.progress.check()
        rt.client.kill(actor_id_of(actor), "it was killed by hpcray.kill()", not no_restart)
        rt.transport.flush()


def get_actor(name, namespace=None):
    """The handle of the live actor registered under ``name`` (in ``namespace``, by default
    the job's).

    Raises:
        ValueError: no live actor has that name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"get_actor needs a non-empty name, got {name!r}")
    rt = session.runtime()
    info = rt.requests.ask(messages.get_actor, name, namespace)
    return ActorHandle(*rt.client.describe(info), rt.client.session_key())


def _check_refs(refs, what, generators=False):
    for ref in refs:
        if not isinstance(ref, ObjectRef) and not (
                generators and isinstance(ref, ObjectRefGenerator)):
            hint = (" (iterate an ObjectRefGenerator for the refs of its items)"
                    if isinstance(ref, ObjectRefGenerator) else "")
            raise TypeError(f"{what} expects ObjectRefs, got {type(ref).__name__}: "
                            f"{ref!r}{hint}")


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
        RuntimeBrokenError: an internal fault broke the runtime (rank, host and cause named).
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
    rt = session.runtime()
    ids = [ref.id for ref in object_refs_list]
    values = rt.access.get(ids, timeout)
    return values[0] if single else values


def put(value):
    """Store ``value`` as an object owned by this process; return its ObjectRef.

    Raises:
        TypeError: ``value`` is already an ObjectRef.
        SerializationError: ``value`` cannot be pickled.
        ObjectStoreFullError: the node's store has no room, even after spilling.
    """
    if isinstance(value, ObjectRef):
        raise TypeError("put() of an ObjectRef is not allowed; pass the ref itself instead")
    return session.runtime().submitter.put(value)


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """Wait until ``num_returns`` of the refs are ready, or the timeout passes.

    An ObjectRefGenerator among them is ready when its next item is (or its end), as in
    Ray.

    Returns:
        ``(ready, not_ready)``: two lists of refs, each in the order of ``object_refs``;
        ``ready`` holds at most ``num_returns`` refs.

    Raises:
        TypeError: not a list of ObjectRefs.
        ValueError: duplicate refs, or ``num_returns`` out of range.
    """
    if isinstance(object_refs, ObjectRef) or not isinstance(object_refs, (list, tuple)):
        raise TypeError("wait expects a list of ObjectRefs")
    _check_refs(object_refs, "wait", generators=True)
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
    rt = session.runtime()
    ids = [_wait_id(ref) for ref in object_refs]
    streams = {_wait_id(ref) for ref in object_refs if isinstance(ref, ObjectRefGenerator)}
    if streams:
        ready_ids = rt.access.wait(ids, num_returns, timeout, streams)
    else:
        ready_ids = rt.access.wait(ids, num_returns, timeout)
    ready, not_ready = [], []
    for ref, object_id in zip(object_refs, ids):
        (ready if object_id in ready_ids and len(ready) < num_returns else not_ready).append(ref)
    return ready, not_ready


def _wait_id(ref):
    return ref.completed().id if isinstance(ref, ObjectRefGenerator) else ref.id


def cancel(object_ref, *, force=False, recursive=True):
    """Cancel the task that produces ``object_ref``, as Ray's ``cancel``.

    A task that has not started is dropped. One that runs in a worker process gets
    KeyboardInterrupt in its thread (``force=False``) or loses its worker process
    (``force=True``); with ``recursive`` the tasks it submitted are cancelled the same way.
    Either way its ``get`` raises TaskCancelledError, and a cancelled task is not retried.

    An ObjectRefGenerator cancels its generator task.

    Raises:
        TypeError: ``object_ref`` is not an ObjectRef.
    """
    if isinstance(object_ref, ObjectRefGenerator):
        object_ref = object_ref.completed()
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(f"cancel expects an ObjectRef, got {type(object_ref).__name__}")
    rt = session.runtime()
    with rt.lock:
        rt.submitter.cancel(object_ref.id, force, recursive)
        rt.transport.flush()


def get_gpu_ids():
    """The ids of the GPUs pinned to this rank (its ``CUDA_VISIBLE_DEVICES``), as Ray's
    ``get_gpu_ids``: in a ``num_gpus=1`` task, the one GPU it may use; ``[]`` without GPUs."""
    session.runtime()
    return _resources.gpu_ids()


def get_runtime_context():
    """Return a RuntimeContext: rank, node id, task id of the calling code."""
    return RuntimeContext(session.runtime(), session.state.namespace)


def cluster_resources():
    """Total logical resources of the job's executing ranks, e.g. ``{"CPU": 4.0}``."""
    rt = session.runtime()
    return add_up(rt.job.executing_capacities().items(), rt.job.node_of)


def available_resources():
    """Logical resources not taken by running or queued tasks (the head's view)."""
    return session.runtime().requests.ask(messages.available)


def nodes():
    """One dict per node of the job: id, host, ranks, logical resources, and whether it is
    alive (a node whose ranks all died is not), with Ray's keys."""
    rt = session.runtime()
    job, dead = rt.job, rt.liveness.dead
    result = []
    members = {}                               # (the driver's own node in python script.py
    for index in sorted(set(job.node_of)):     # is part of its host's one executing node)
        members.setdefault(executing_node(job, index), []).extend(job.ranks_on(index))
    for index, ranks in sorted(members.items()):
        ranks = sorted(ranks)
        resources = add_up(((rank, job.capacities[rank]) for rank in ranks), job.node_of)
        alive = any(rank not in dead for rank in ranks)
        result.append({"NodeID": job.node_id(index), "Alive": alive,
                       "NodeManagerHostname": job.host_of[ranks[0]], "Resources": resources,
                       "Ranks": ranks})
    return result
