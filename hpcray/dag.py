"""Ray's DAG API (``ray.dag``): build a graph of calls with ``.bind()``, run it with
``.execute()``, or compile it once and run it many times (``experimental_compile()``).

``f.bind(...)`` makes a :class:`FunctionNode`, ``Actor.bind(...)`` a :class:`ClassNode` and
``node.method.bind(...)`` / ``handle.method.bind(...)`` a :class:`ClassMethodNode`; an
:class:`InputNode` (``with InputNode() as inp:``) stands for ``execute``'s arguments
(``inp[0]``, ``inp.name`` for one of them) and :class:`MultiOutputNode` gathers several
results. Executing a graph submits each node once, in dependency order, passing results on as
ObjectRefs, so the runtime runs independent nodes in parallel and moves no value through the
driver. A plain graph builds its actors again at each ``execute`` (as Ray does); a compiled
one builds them once, and ``teardown()`` ends them.

Public API floor (7): imports ``core`` only (to read a compiled graph's results); remote
functions and actor classes import this module to bind themselves.
"""
from .core import current
from .core.object_ref import ObjectRef


class DAGNode:
    """A node of a graph: ``execute(*args, **kwargs)`` runs the graph that ends here."""

    def execute(self, *args, **kwargs):
        """Run the graph; return this node's result (an ObjectRef, an actor handle, or a
        list of them for a MultiOutputNode)."""
        return self._run(_Execution(args, kwargs, {}))

    def experimental_compile(self, **options):
        """A :class:`CompiledDAG` of this graph (options of Ray's are accepted)."""
        return CompiledDAG(self)

    def _run(self, execution):
        done = execution.done
        if id(self) not in done:
            done[id(self)] = self._evaluate(execution)
        return done[id(self)]

    def _evaluate(self, execution):
        raise NotImplementedError


class _Execution:
    """One run of a graph: its input, what each node gave (each runs once), and the actors
    its ClassNodes built."""
    __slots__ = ("args", "kwargs", "done", "actors")

    def __init__(self, args, kwargs, done):
        self.args, self.kwargs, self.done = args, kwargs, done
        self.actors = {}


def _resolve(value, execution):
    """``value`` with the nodes in it (also inside lists, tuples and dicts) replaced by
    their results."""
    if isinstance(value, DAGNode):
        return value._run(execution)
    if isinstance(value, list):
        return [_resolve(item, execution) for item in value]
    if isinstance(value, tuple):
        return tuple(_resolve(item, execution) for item in value)
    if isinstance(value, dict):
        return {key: _resolve(item, execution) for key, item in value.items()}
    return value


class InputNode(DAGNode):
    """``execute``'s arguments: the one argument itself, ``inp[i]`` the i-th, ``inp.name``
    (or ``inp["name"]``) the keyword argument ``name``."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getitem__(self, key):
        return InputAttributeNode(self, key)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return InputAttributeNode(self, name)

    def _evaluate(self, execution):
        if len(execution.args) == 1 and not execution.kwargs:
            return execution.args[0]
        if not execution.args and not execution.kwargs:
            return None
        raise ValueError("this graph takes one argument (its InputNode is used whole); "
                         "use inp[i] or inp.name to take several")


class InputAttributeNode(DAGNode):
    """One of ``execute``'s arguments (an index) or keyword arguments (a name)."""

    def __init__(self, input_node, key):
        self._key = key

    def _evaluate(self, execution):
        key = self._key
        if isinstance(key, int):
            if key >= len(execution.args):
                raise ValueError(f"the graph uses input {key} but execute() got "
                                 f"{len(execution.args)} positional arguments")
            return execution.args[key]
        if key in execution.kwargs:
            return execution.kwargs[key]
        if len(execution.args) == 1 and isinstance(execution.args[0], dict):
            return execution.args[0][key]
        raise ValueError(f"the graph uses input {key!r} but execute() got no such keyword "
                         f"argument")


class FunctionNode(DAGNode):
    """A remote function bound to its arguments: runs as a task."""

    def __init__(self, remote_function, args, kwargs):
        self._function = remote_function
        self._args, self._kwargs = args, kwargs

    def _evaluate(self, execution):
        return self._function.remote(*_resolve(self._args, execution),
                                     **_resolve(self._kwargs, execution))


class ClassNode(DAGNode):
    """An actor class bound to its constructor's arguments: ``node.method.bind(...)`` calls
    a method of the actor it becomes."""

    def __init__(self, actor_class, args, kwargs):
        self._class = actor_class
        self._args, self._kwargs = args, kwargs

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _MethodBinder(self, name)

    def _evaluate(self, execution):
        handle = self._class.remote(*_resolve(self._args, execution),
                                    **_resolve(self._kwargs, execution))
        execution.actors[id(self)] = handle
        return handle


class _MethodBinder:
    def __init__(self, actor, name):
        self._actor, self._name = actor, name

    def bind(self, *args, **kwargs):
        return ClassMethodNode(self._actor, self._name, args, kwargs)


class ClassMethodNode(DAGNode):
    """A method of an actor (a ClassNode of the graph, or a live handle) bound to its
    arguments: runs as an actor call."""

    def __init__(self, actor, method_name, args, kwargs):
        self._actor, self._method = actor, method_name
        self._args, self._kwargs = args, kwargs

    def _evaluate(self, execution):
        handle = _resolve(self._actor, execution)
        return getattr(handle, self._method).remote(*_resolve(self._args, execution),
                                                    **_resolve(self._kwargs, execution))


class MultiOutputNode(DAGNode):
    """Several results of a graph: ``execute`` returns a list of them."""

    def __init__(self, outputs):
        self._outputs = list(outputs)

    def _evaluate(self, execution):
        return [output._run(execution) for output in self._outputs]


class CompiledDAGRef(ObjectRef):
    """The result of a compiled graph's ``execute``: an ObjectRef (``get`` it, or call
    :meth:`get`)."""
    __slots__ = ()

    def get(self, timeout=None):
        return current.runtime().access.get([self.id], timeout)[0]

    def __repr__(self):
        return f"CompiledDAGRef({self.hex()})"


class CompiledDAG:
    """A graph compiled once: its actors are built at the first ``execute`` and kept for
    the next ones, until :meth:`teardown`."""

    def __init__(self, root):
        self._root = root
        self._actors = {}                      # id(ClassNode) -> its handle, kept

    def execute(self, *args, **kwargs):
        execution = _Execution(args, kwargs, dict(self._actors))
        result = self._root._run(execution)
        self._actors.update(execution.actors)  # (each ClassNode's actor: built once)
        if isinstance(result, list):
            return [CompiledDAGRef(ref.id) for ref in result]
        return CompiledDAGRef(result.id) if isinstance(result, ObjectRef) else result

    def teardown(self, kill_actors=True):
        """Let go of the actors the graph built (each ends once its last handle is gone)."""
        self._actors = {}


__all__ = ["DAGNode", "InputNode", "InputAttributeNode", "FunctionNode", "ClassNode",
           "ClassMethodNode", "MultiOutputNode", "CompiledDAG", "CompiledDAGRef"]
