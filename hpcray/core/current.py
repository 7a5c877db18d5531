"""What this process and each of its threads are running: the process's runtime, and the
task (or actor call) each thread runs.

The runtime is set once it is built (``launch/join.py``) and cleared when it ends. The task
stack is per thread: a task that waits in ``get`` may run other tasks on the same thread
(nested), so it is a stack, and its top is "the task this thread runs now".
"""
import threading

from ..exceptions import RuntimeBrokenError

_runtime = None
_local = threading.local()


def runtime():
    """This process's runtime.

    Raises:
        RuntimeBrokenError: hpcray is not running in this process.
    """
    if _runtime is None:
        raise RuntimeBrokenError("hpcray is not running in this process; call hpcray.init()")
    return _runtime


def runtime_or_none():
    return _runtime


def set_runtime(rt):
    global _runtime
    _runtime = rt


def note_ref(object_id, delta):
    """An ObjectRef of ``object_id`` was made (+1) or dropped (-1) in this process: queue it
    for the runtime's reference counts (any thread, no lock; hot: one call per ref)."""
    rt = _runtime
    if rt is not None:
        rt.refs.events.append((object_id, delta))


def task_stack():
    """The tasks this thread runs, outermost first (the list itself: push/pop on it)."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def current_task():
    """The task (TaskSpec) this thread runs now, or None (the driver, a helper thread)."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


def is_serving():
    """Whether this thread is one of the rank's serving threads (it lends the rank's
    execution slot while a task it runs waits)."""
    return getattr(_local, "serving", False)


def set_serving():
    _local.serving = True
