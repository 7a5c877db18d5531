"""Collectives among actors over MPI, with the names of ``ray.util.collective``.

A group is a set of actors, each with a rank in the group. It maps onto an MPI
sub-communicator of the job's ranks that host its actors (``MPI_Comm_create_group``, built
once, when every hosting rank is ready). Several members on one MPI rank are combined there
first, through memory; then one non-blocking MPI collective runs among the hosting ranks
(``MPI_Iallreduce``, ``Ibcast``, ``Iallgatherv``, ``Ireduce``, ``Ibarrier``), polled with the
runtime's lock released between tests, so the rank keeps serving messages meanwhile.

Every call first compares what each member passed (operation, shape, dtype, root) through a
small ``Iallgather`` of digests: a mismatch raises :class:`CollectiveError` on every member
instead of hanging in MPI. A member that never calls makes the others fail after
``HPCRAY_COLLECTIVE_TIMEOUT`` seconds (300). Tensors are numpy arrays, or torch / cupy
tensors (GPU memory is staged through host memory).

Actors run in worker processes, which never touch MPI: there each of these functions runs on
the actor's rank instead (the tensors travel over the worker's socket, and what the call
wrote into them is copied back in place).

Usage, as in Ray::

    create_collective_group(workers, world_size=4, ranks=[0, 1, 2, 3], group_name="g")
    # inside each worker actor's method:
    allreduce(gradient, group_name="g")            # in place
"""
import functools
import hashlib
import os
import threading
import time

import numpy as np

from ..actor import actor_id_of
from ..actors.host import current_call
from ..exceptions import HpcrayError
from ..launch import session
from ..wire import messages

__all__ = [
    "CollectiveError", "ReduceOp", "allgather", "allreduce", "barrier", "broadcast",
    "create_collective_group", "destroy_collective_group", "get_collective_group_size",
    "get_rank", "init_collective_group", "is_group_initialized", "recv", "reduce",
    "reducescatter", "send",
]


class CollectiveError(HpcrayError):
    """A collective failed: members disagreed, one never came, or the group is unusable."""


class ReduceOp:
    SUM = "sum"
    PRODUCT = "prod"
    MIN = "min"
    MAX = "max"


_UFUNCS = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum}
_groups = {}                 # (name, MPI rank) -> _Group, in this process
_groups_lock = threading.Lock()


def _timeout():
    return _runtime().config.collective_timeout


def _runtime():
    return session.runtime()


def _on_the_rank(function):
    """Run ``function`` on the rank when called in a worker process (see the docstring)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        rt = session.runtime()
        if not getattr(rt, "in_worker_process", False):
            return function(*args, **kwargs)
        result, args_after, kwargs_after = rt.on_rank(
            functools.partial(_run_on_rank, function.__name__, args, kwargs))
        for before, after in zip(args, args_after):
            _copy_back(before, after)
        for name, before in kwargs.items():
            _copy_back(before, kwargs_after[name])
        return result
    return wrapper


def _run_on_rank(name, args, kwargs, rt):
    """On the rank, for a worker process: the call, and its arguments as it left them."""
    result = globals()[name].__wrapped__(*args, **kwargs)
    return result, args, kwargs


def _copy_back(before, after):
    """Write into a caller's tensor (or list of them) what the call wrote into its copy."""
    if isinstance(before, list) and isinstance(after, list):
        for index, (item, new) in enumerate(zip(before, after)):
            if _is_tensor(item):
                _copy_back(item, new)
            else:
                before[index] = new
    elif isinstance(before, np.ndarray):
        np.copyto(before, after)
    elif hasattr(before, "copy_"):             # torch
        before.copy_(after)
    elif hasattr(before, "set") and hasattr(after, "get"):     # cupy
        before.set(after.get())


def _is_tensor(value):
    return isinstance(value, np.ndarray) or hasattr(value, "copy_") or hasattr(value, "set")


def _my_actor_id():
    call = current_call.get()
    if call is None:
        raise CollectiveError("collective calls are made from inside an actor's method")
    return call.actor_id


# ---------------------------------------------------------------------- declaring groups
@_on_the_rank
def create_collective_group(actors, world_size, ranks, backend="mpi", group_name="default"):
    """Declare a group from the driver: ``actors[i]`` gets rank ``ranks[i]``."""
    _check_backend(backend)
    if len(actors) != world_size or sorted(ranks) != list(range(world_size)):
        raise ValueError(f"need {world_size} actors with ranks 0..{world_size - 1}, got "
                         f"{len(actors)} actors and ranks {list(ranks)}")
    members = {actor_id_of(actor): rank for actor, rank in zip(actors, ranks)}
    _runtime().requests.ask(messages.group_declare, group_name, world_size, members)


@_on_the_rank
def init_collective_group(world_size, rank, backend="mpi", group_name="default"):
    """Join a group from inside an actor (every member calls it with its own rank)."""
    _check_backend(backend)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    _runtime().requests.ask(messages.group_join, group_name, world_size, rank, _my_actor_id())
    _group(group_name)


@_on_the_rank
def destroy_collective_group(group_name="default"):
    """Forget the group (on this rank, and its declaration at the head)."""
    rt = _runtime()
    with _groups_lock:
        group = _groups.pop((group_name, rt.rank), None)
    if group is not None:
        group.free()
    rt.requests.ask(messages.group_drop, group_name)


@_on_the_rank
def is_group_initialized(group_name="default"):
    return (group_name, _runtime().rank) in _groups


@_on_the_rank
def get_rank(group_name="default"):
    """This actor's rank in the group (-1 if it is not a member)."""
    group = _groups.get((group_name, _runtime().rank))
    if group is None:
        return -1
    return group.rank_of.get(_my_actor_id(), -1)


@_on_the_rank
def get_collective_group_size(group_name="default"):
    group = _groups.get((group_name, _runtime().rank))
    return -1 if group is None else group.world_size


def _check_backend(backend):
    if str(backend).lower() not in ("mpi", "gloo", "nccl"):
        raise ValueError(f"unknown backend {backend!r}: hpcray's collectives run over MPI")


def _group(name):
    """This rank's state of the group, built on first use (waits for every member)."""
    rt = _runtime()
    key = (name, rt.rank)
    with _groups_lock:
        group = _groups.get(key)
        if group is None:
            group = _groups[key] = _Group(rt, name)
    group.ensure_ready()
    return group


# ---------------------------------------------------------------------- tensors
class _Tensor:
    """A numpy view of a tensor, and how to write a result back into it."""

    def __init__(self, tensor):
        self.tensor = tensor
        self.device = None
        module = type(tensor).__module__
        if isinstance(tensor, np.ndarray):
            self.array = tensor
        elif module.startswith("torch"):
            if tensor.device.type == "cpu":
                self.array = tensor.detach().numpy()
            else:
                self.device = "torch"
                self.array = tensor.detach().cpu().numpy()
        elif module.startswith("cupy"):
            self.device = "cupy"
            self.array = tensor.get()
        else:
            raise TypeError(f"collectives take numpy arrays or torch/cupy tensors, got "
                            f"{type(tensor).__name__}")

    def write(self, values):
        if values is self.array:           # the collective ran in place
            return
        if self.device is None:
            if not self.array.flags.writeable:
                raise ValueError("the result goes into the tensor in place, but this array is "
                                 "read-only (copy an array that came from get first)")
            self.array[...] = values
        elif self.device == "torch":
            import torch
            self.tensor.copy_(torch.from_numpy(np.ascontiguousarray(values)))
        else:
            self.tensor.set(np.ascontiguousarray(values))


def _describe(array):
    return f"{array.dtype.str}{tuple(array.shape)}"


# ---------------------------------------------------------------------- one rank's group state
class _Round:
    __slots__ = ("inputs", "done", "error", "result")

    def __init__(self):
        self.inputs = {}           # group rank -> what the member passed
        self.done = False
        self.error = None
        self.result = None


class _Group:
    def __init__(self, rt, name):
        self.rt = rt
        self.name = name
        self.lock = threading.Lock()
        self.comm = None
        self.world_size = None
        self.rank_of = {}          # actor id -> group rank (every member)
        self.host_of = {}          # group rank -> MPI rank
        self.local = []            # group ranks hosted here
        self.hosts = []            # MPI ranks hosting members, sorted (= sub-comm order)
        self.sequence = {}         # group rank -> calls made so far
        self.rounds = {}           # call number -> _Round
        self.mailbox = {}          # (src, dst) -> [arrays] sent between local members
        self.broken = None

    # ---------------------------------------------------------------- set-up
    def ensure_ready(self):
        if self.comm is not None:
            return
        rt = self.rt
        while not self.lock.acquire(blocking=False):   # another member of this rank builds
            rt.waiting.wait_until(lambda: False, time.monotonic() + 0.002)   # lend the rank
        try:
            if self.comm is not None:
                return
            deadline = time.monotonic() + _timeout()
            info = self._wait_info(deadline, ready=False)
            world_size, placed, _ = info
            self.world_size = world_size
            self.rank_of = {actor: rank for rank, (actor, _) in placed.items()}
            self.host_of = {rank: host for rank, (_, host) in placed.items()}
            self.local = sorted(r for r, host in self.host_of.items() if host == self.rt.rank)
            self.hosts = sorted(set(self.host_of.values()))
            self._wait_info(deadline, ready=True)      # every hosting rank is here too
            self.comm = self._make_comm()
        finally:
            self.lock.release()

    def _wait_info(self, deadline, ready):
        rt = self.rt
        while True:
            try:
                info = rt.requests.ask(messages.group_info, self.name,
                                       rt.rank if ready else None)
            except RuntimeError as error:      # the head: the group is broken
                raise CollectiveError(str(error)) from None
            if info is not None and (info[2] or not ready):
                return info
            if time.monotonic() > deadline:
                raise CollectiveError(f"collective group {self.name!r}: not every member "
                                      f"joined within HPCRAY_COLLECTIVE_TIMEOUT")
            # a pause that lends this rank to other work (another member's __init__ may need
            # this very thread's rank to run before every member has joined)
            rt.waiting.wait_until(lambda: False, time.monotonic() + 0.002)

    def _make_comm(self):
        from mpi4py import MPI
        rt = self.rt
        tag = int.from_bytes(hashlib.blake2b(self.name.encode(), digest_size=2).digest(),
                             "big") % 30000
        with rt.lock:
            group = rt.comm.Get_group().Incl(self.hosts)
            comm = rt.comm.Create_group(group, tag)
            group.Free()
        if comm == MPI.COMM_NULL:
            raise CollectiveError(f"collective group {self.name!r}: this rank is not in it")
        return comm

    def free(self):
        if self.comm is not None:
            with self.rt.lock:
                self.comm.Free()
            self.comm = None

    # ---------------------------------------------------------------- rounds
    def member(self):
        actor_id = _my_actor_id()
        rank = self.rank_of.get(actor_id)
        if rank is None:
            raise CollectiveError(f"this actor is not a member of collective group "
                                  f"{self.name!r}")
        return rank

    def collective(self, kind, value, signature, run):
        """Join this member's next round; the last local member to arrive runs ``run``
        (local combine + one MPI collective). Returns the round's result for this member."""
        if self.broken:
            raise CollectiveError(self.broken)
        self.check_members()
        rank = self.member()
        rt = self.rt
        with rt.lock:
            number = self.sequence.get(rank, 0)
            self.sequence[rank] = number + 1
            state = self.rounds.setdefault(number, _Round())
            state.inputs[rank] = (kind, signature, value)
            last = len(state.inputs) == len(self.local)
        if last:
            try:
                self._check(state)
                state.result = run(state.inputs)
            except BaseException as error:
                state.error = error
                if not isinstance(error, CollectiveError):
                    self.broken = f"collective group {self.name!r} is broken: {error!r}"
            with rt.lock:
                state.done = True
                rt.waiting.notify()
        else:
            deadline = time.monotonic() + _timeout()
            if not rt.waiting.wait_until(lambda: state.done, deadline):
                raise CollectiveError(f"collective group {self.name!r}: the other members "
                                      f"on this rank did not call {kind} in time")
        with rt.lock:
            if all(r in state.inputs for r in self.local) and state.done:
                state.inputs.pop(rank, None)
                if not state.inputs:
                    self.rounds.pop(number, None)
        if state.error is not None:
            if isinstance(state.error, CollectiveError):
                raise CollectiveError(str(state.error))
            raise CollectiveError(f"{kind} failed: {state.error!r}") from state.error
        return state.result

    def _check(self, state):
        """Every member passed the same kind of call: check here, then across ranks."""
        mine = {sig for _, sig, _ in state.inputs.values()}
        digest = int.from_bytes(hashlib.blake2b(repr(sorted(mine)).encode(),
                                                digest_size=8).digest(), "big") >> 1
        local_ok = len(mine) == 1
        digests = np.zeros(len(self.hosts), dtype=np.int64)
        self.wait(self.comm.Iallgather(np.array([digest if local_ok else -1], np.int64),
                                       digests))
        if not local_ok or len(set(digests.tolist())) != 1:
            calls = ", ".join(f"member {rank}: {sig}" for rank, (_, sig, _) in
                              sorted(state.inputs.items()))
            raise CollectiveError(f"collective group {self.name!r}: members called different "
                                  f"operations or passed different shapes/dtypes (on this "
                                  f"rank {calls}); every member must make the same call")

    def wait(self, request):
        """Poll a non-blocking MPI request to completion, letting the rank serve meanwhile.

        Raises:
            CollectiveError: a member's rank died (the request can never complete), or a
                member did not take part within HPCRAY_COLLECTIVE_TIMEOUT.
        """
        rt = self.rt
        deadline = time.monotonic() + _timeout()
        spins = 0
        while True:
            with rt.lock:
                if request.Test():
                    return
                spins += 1
                if spins % 64 == 0:
                    rt.progress.turn()
                    rt.progress.flush()
                    self.check_members()
            if time.monotonic() > deadline:
                raise CollectiveError(f"collective group {self.name!r}: a member rank did not "
                                      f"take part within HPCRAY_COLLECTIVE_TIMEOUT")
            os.sched_yield()

    def check_members(self):
        """Raise CollectiveError if the rank of a member died: the group can never complete
        a collective again (its MPI requests are left behind)."""
        dead = set(self.hosts) & self.rt.liveness.dead
        if dead:
            self.broken = (f"collective group {self.name!r} is broken: the rank(s) "
                           f"{sorted(dead)} of its member(s) died")
            raise CollectiveError(self.broken)

    def root_index(self, group_rank):
        return self.hosts.index(self.host_of[group_rank])


# ---------------------------------------------------------------------- operations
def _reduce_local(values, op):
    """The members' values combined into one buffer; a single member's own array when it can
    take the result in place (no copy of a large tensor)."""
    first = values[0]
    if (len(values) == 1 and isinstance(first, np.ndarray) and first.flags.writeable
            and first.flags.c_contiguous):
        return first
    ufunc = _UFUNCS[op]
    result = np.array(first, copy=True)
    for value in values[1:]:
        ufunc(result, value, out=result)
    return result


def _mpi_op(op):
    from mpi4py import MPI
    return {"sum": MPI.SUM, "prod": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}[op]


def _op_name(op):
    name = getattr(op, "value", op)
    name = {"product": "prod"}.get(str(name).lower(), str(name).lower())
    if name not in _UFUNCS:
        raise ValueError(f"unknown reduce op {op!r}: use sum, prod, min or max")
    return name


def _allreduce_round(group, op):
    """A round that combines the rank's members, then allreduces among the ranks."""
    def run(inputs):
        total = _reduce_local([value.array for _, _, value in inputs.values()], op)
        if len(group.hosts) > 1:
            from mpi4py import MPI
            group.wait(group.comm.Iallreduce(MPI.IN_PLACE, total, _mpi_op(op)))
        return total
    return run


@_on_the_rank
def allreduce(tensor, group_name="default", op=ReduceOp.SUM):
    """Reduce ``tensor`` over every member; the result replaces it (in place) everywhere."""
    op = _op_name(op)
    group = _group(group_name)
    view = _Tensor(tensor)

    result = group.collective("allreduce", view, ("allreduce", op, _describe(view.array)),
                              _allreduce_round(group, op))
    view.write(result)
    return tensor


@_on_the_rank
def reduce(tensor, dst_rank=0, group_name="default", op=ReduceOp.SUM):
    """Reduce ``tensor`` over every member into the tensor of member ``dst_rank``."""
    op = _op_name(op)
    group = _group(group_name)
    view = _Tensor(tensor)

    def run(inputs):
        total = _reduce_local([value.array for _, _, value in inputs.values()], op)
        if len(group.hosts) > 1:
            from mpi4py import MPI
            root = group.root_index(dst_rank)
            if group.comm.Get_rank() == root:
                group.wait(group.comm.Ireduce(MPI.IN_PLACE, total, _mpi_op(op), root))
            else:
                group.wait(group.comm.Ireduce(total, None, _mpi_op(op), root))
        return total
    result = group.collective("reduce", view, ("reduce", op, dst_rank, _describe(view.array)),
                              run)
    if group.member() == dst_rank:
        view.write(result)
    return tensor


@_on_the_rank
def broadcast(tensor, src_rank=0, group_name="default"):
    """Copy member ``src_rank``'s tensor into every member's tensor."""
    group = _group(group_name)
    view = _Tensor(tensor)

    def run(inputs):
        if src_rank in inputs:
            data = np.array(inputs[src_rank][2].array, copy=True)
        else:
            data = np.empty_like(next(iter(inputs.values()))[2].array)
        if len(group.hosts) > 1:
            group.wait(group.comm.Ibcast(data, group.root_index(src_rank)))
        return data
    result = group.collective("broadcast", view, ("broadcast", src_rank,
                                                  _describe(view.array)), run)
    view.write(result)
    return tensor


@_on_the_rank
def allgather(tensor_list, tensor, group_name="default"):
    """Every member's ``tensor`` into ``tensor_list`` (by group rank), on every member."""
    group = _group(group_name)
    view = _Tensor(tensor)
    if len(tensor_list) != group.world_size:
        raise ValueError(f"tensor_list needs {group.world_size} tensors, got {len(tensor_list)}")

    def run(inputs):
        order = sorted(inputs)
        mine = np.concatenate([np.ascontiguousarray(inputs[r][2].array).reshape(-1).view(np.uint8)
                               for r in order])
        if len(group.hosts) == 1:
            gathered, ranks = mine, order
        else:
            from mpi4py import MPI
            per_rank = [sorted(r for r, h in group.host_of.items() if h == host)
                        for host in group.hosts]
            counts = [len(ranks) * mine.nbytes // len(order) for ranks in per_rank]
            gathered = np.empty(sum(counts), np.uint8)
            displacements = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
            group.wait(group.comm.Iallgatherv(
                [mine, MPI.BYTE], [gathered, (counts, displacements), MPI.BYTE]))
            ranks = [r for ranks in per_rank for r in ranks]
        size = view.array.nbytes
        pieces = {rank: gathered[i * size:(i + 1) * size].view(view.array.dtype)
                  .reshape(view.array.shape) for i, rank in enumerate(ranks)}
        return pieces
    pieces = group.collective("allgather", view, ("allgather", _describe(view.array)), run)
    for rank, target in enumerate(tensor_list):
        _Tensor(target).write(pieces[rank])
    return tensor_list


@_on_the_rank
def reducescatter(tensor, tensor_list, group_name="default", op=ReduceOp.SUM):
    """Member ``i`` gets, in ``tensor``, the reduction over members of their
    ``tensor_list[i]``."""
    op = _op_name(op)
    group = _group(group_name)
    view = _Tensor(tensor)
    if len(tensor_list) != group.world_size:
        raise ValueError(f"tensor_list needs {group.world_size} tensors, got {len(tensor_list)}")
    stacked = np.stack([_Tensor(t).array for t in tensor_list])

    class _Stack:
        array = stacked

    total = group.collective("reducescatter", _Stack,
                             ("reducescatter", op, _describe(stacked)), _allreduce_round(group, op))
    view.write(total[group.member()])
    return tensor


@_on_the_rank
def barrier(group_name="default"):
    """Wait until every member of the group has called barrier."""
    group = _group(group_name)

    def run(inputs):
        if len(group.hosts) > 1:
            group.wait(group.comm.Ibarrier())
    group.collective("barrier", None, ("barrier",), run)


@_on_the_rank
def send(tensor, dst_rank, group_name="default"):
    """Send ``tensor`` to member ``dst_rank`` (which calls :func:`recv`)."""
    group = _group(group_name)
    me = group.member()
    array = np.ascontiguousarray(_Tensor(tensor).array)
    if group.host_of[dst_rank] == group.rt.rank:          # on this rank: through memory
        with group.rt.lock:
            group.mailbox.setdefault((me, dst_rank), []).append(array.copy())
            group.rt.waiting.notify()
        return
    group.wait(group.comm.Isend(array, group.root_index(dst_rank),
                                _p2p_tag(group, me, dst_rank)))


@_on_the_rank
def recv(tensor, src_rank, group_name="default"):
    """Receive into ``tensor`` what member ``src_rank`` sent."""
    group = _group(group_name)
    me = group.member()
    view = _Tensor(tensor)
    if group.host_of[src_rank] == group.rt.rank:
        box = group.mailbox.setdefault((src_rank, me), [])
        if not group.rt.waiting.wait_until(lambda: bool(box), time.monotonic() + _timeout()):
            raise CollectiveError(f"recv from member {src_rank} timed out")
        with group.rt.lock:
            data = box.pop(0)
    else:
        data = np.empty_like(view.array)
        group.wait(group.comm.Irecv(data, group.root_index(src_rank),
                                    _p2p_tag(group, src_rank, me)))
    view.write(data.reshape(view.array.shape))
    return tensor


def _p2p_tag(group, src, dst):
    return 1 + src * group.world_size + dst
