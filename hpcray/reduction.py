"""``reduce(refs, op)``: combine many objects into one where they live.

::

    inputs on node A      inputs on node B      inputs on node C      (ready, or still running)
    a1  a2  a3            b1  b2                c1  c2  c3  c4
      \\  |  /               \\ /                   \\  |  |  /
    combine on A          combine on B          combine on C          one task per node: reads the
         |                     |                     |                 node's inputs zero-copy,
         +------ pair on A ----+                     |                 writes one fresh output
                  |                                  |
                  +------------- pair on A ----------+                 pairs: on the left input's
                                 |                                     node, the right one moves
                               result                                  once; ceil(log2 nodes) levels

The whole graph is submitted at once, without waiting: the tasks wait for their arguments as
any task does, so inputs may still be computing. Each task is submitted with an explicit node
hint (``RemoteFunction.submit(..., node_hint=)``); the head places it on a rank of that node when one
has room (elsewhere otherwise: the result is the same, only slower). The caller's node, when
it runs tasks, comes first, so the root lands there and ``get`` reads it in place.

Ops: ``"sum"``, ``"prod"``, ``"min"``, ``"max"`` are numpy's ``add``, ``multiply``, ``minimum``,
``maximum`` (NaN propagates through min and max), applied with numpy's broadcasting rules;
two plain Python ints or floats combine with Python's arithmetic (ints stay exact). Any other
binary callable ``op(a, b)`` (``np.maximum``, ``operator.add``, a lambda) is applied pairwise.
The op must be associative and commutative: the order in which inputs meet depends on where
they live.
"""
import math
import operator

import numpy as np

from .core.object_ref import ObjectRef
from .launch import session
from .remote_function import RemoteFunction

_UFUNCS = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum}


def _py_min(a, b):
    return a if a != a or a <= b else b        # NaN propagates, as with np.minimum


def _py_max(a, b):
    return a if a != a or a >= b else b


_PYTHON = {np.add: operator.add, np.multiply: operator.mul, np.minimum: _py_min,
           np.maximum: _py_max}
_PLAIN = (int, float, bool)                    # exact types: numpy scalars are not plain


def reduce(object_refs, op="sum"):
    """See :func:`hpcray.reduce`."""
    if isinstance(object_refs, ObjectRef):
        object_refs = [object_refs]
    if not isinstance(object_refs, (list, tuple)):
        raise TypeError(f"reduce expects a list of ObjectRefs, got {type(object_refs).__name__}")
    for ref in object_refs:
        if not isinstance(ref, ObjectRef):
            raise TypeError(f"reduce expects ObjectRefs, got {type(ref).__name__}: {ref!r}")
    if not object_refs:
        raise ValueError("reduce of an empty list of ObjectRefs: there is nothing to combine")
    function = resolve_op(op)
    rt = session.runtime()
    with rt.lock:
        locations = [rt.submitter.locate(ref.id) for ref in object_refs]
        job = rt.job
        here = job.node_index
        running = {job.node_of[rank] for rank in job.executors}

    def combine_on(node, *args):              # one task, placed on ``node`` if it has room
        return node, _COMBINE.submit((function, *args), {}, node_hint=node)
    partials = [combine_on(node, *[object_refs[i] for i in members])
                for node, members in group_by_node(locations, here, running)]
    for level in tree_levels(len(partials)):  # each pair on its left input's node
        partials = [partials[left] if right is None else
                    combine_on(partials[left][0], partials[left][1], partials[right][1])
                    for left, right in level]
    return partials[0][1]


def resolve_op(op):
    """The callable the tasks apply: a ufunc for the named ops, else ``op`` itself."""
    if isinstance(op, str):
        ufunc = _UFUNCS.get(op)
        if ufunc is None:
            raise ValueError(f"unknown reduce op {op!r}; use one of "
                             f"{', '.join(map(repr, _UFUNCS))} or a binary callable")
        return ufunc
    if not callable(op):
        raise TypeError(f"reduce op must be one of {', '.join(map(repr, _UFUNCS))} or a binary "
                        f"callable, got {type(op).__name__}: {op!r}")
    return op


def group_by_node(locations, here=None, running=None):
    """``[(node, [input positions]), ...]``: the inputs of each node, in the order their
    combined results should pair up. Inputs of unknown place (small, or not placed yet) join
    the largest group. First the caller's node ``here`` (when it runs tasks: the root lands
    there), then the other nodes that run tasks (``running``; None: all do), largest first,
    then nodes that run none (their inputs are combined wherever there is room)."""
    groups = {}
    for position, node in enumerate(locations):
        groups.setdefault(node, []).append(position)
    unknown = groups.pop(None, [])
    if not groups:
        return [(None, unknown)]

    def rank(node):
        runs = running is None or node in running
        return (not (node == here and runs), not runs, -len(groups[node]), node)
    order = sorted(groups, key=rank)
    largest = max(order, key=lambda node: len(groups[node]))
    groups[largest] = sorted(groups[largest] + unknown)
    return [(node, groups[node]) for node in order]


def tree_levels(count):
    """Pairings of ``count`` partial results, level by level: ``[[(left, right), ...], ...]``
    indexing the previous level's results (``right`` None: carried up unchanged)."""
    levels = []
    while count > 1:
        levels.append([(i, i + 1 if i + 1 < count else None) for i in range(0, count, 2)])
        count = math.ceil(count / 2)
    return levels


# ------------------------------------------------------------------ what the tasks run
def combine(function, *values):
    """Fold ``values`` with ``function`` into one fresh value (runs in the reduction tasks)."""
    if len(values) == 1:
        return values[0]          # returned as is: packaging the result copies it anyway
    if not isinstance(function, np.ufunc):      # a user's callable
        accumulated = values[0]
        for value in values[1:]:
            accumulated = function(accumulated, value)
        return accumulated
    if _foldable(function, values):
        return _fold_in_place(function, values)
    python = _PYTHON.get(function, function)
    accumulated = values[0]
    for value in values[1:]:
        accumulated = _pair(function, python, accumulated, value)
    return accumulated


def _foldable(ufunc, values):
    """Same-shape arrays of one dtype that ``ufunc`` maps to itself: fold in place."""
    first = values[0]
    if type(first) is not np.ndarray or first.dtype.hasobject:
        return False
    shape, dtype = first.shape, first.dtype
    if not all(type(v) is np.ndarray and v.shape == shape and v.dtype == dtype for v in values):
        return False
    try:
        return ufunc.resolve_dtypes((dtype, dtype, None))[2] == dtype
    except Exception:
        return False


def _fold_in_place(ufunc, arrays):
    """The first two inputs into one fresh output (no copy of the first), the rest into it."""
    out = ufunc(arrays[0], arrays[1])
    for array in arrays[2:]:
        ufunc(out, array, out=out)
    return out


def _pair(ufunc, python, a, b):
    """``a op b``: Python's arithmetic for two plain numbers, else the ufunc (broadcasting)."""
    if type(a) in _PLAIN and type(b) in _PLAIN:
        return python(a, b)
    try:
        return ufunc(a, b)
    except ValueError as error:
        raise ValueError(f"reduce with {ufunc.__name__} cannot combine {_describe(a)} with "
                         f"{_describe(b)} (numpy broadcasting rules apply): {error}") from error


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


_COMBINE = RemoteFunction(combine)
