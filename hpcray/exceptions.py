"""Errors raised by hpcray, with Ray's names as aliases (``RayError``, ``RayTaskError``, ...)."""

__all__ = [
    "HpcrayError", "RayError", "TaskError", "RayTaskError", "GetTimeoutError",
    "TaskCancelledError", "SerializationError", "ObjectLostError", "RuntimeBrokenError",
    "RaySystemError", "ResourceError", "RemoteTraceback", "ObjectStoreFullError",
    "ActorError", "RayActorError", "ActorDiedError", "ConfigError", "WorkerCrashedError",
    "OwnerDiedError", "ActorUnavailableError", "OutOfMemoryError",
    "ObjectReconstructionFailedMaxAttemptsExceededError", "TaskUnschedulableError",
    "ActorUnschedulableError", "ObjectFreedError", "ObjectReconstructionFailedError",
    "ObjectFetchTimedOutError", "NodeDiedError", "RuntimeEnvSetupError",
]


class HpcrayError(Exception):
    """Base class of every error hpcray raises itself."""


class RemoteTraceback(Exception):
    """Carries the text of a traceback that happened on another rank (shown as ``__cause__``)."""

    def __init__(self, tb_text):
        super().__init__(tb_text)
        self.tb_text = tb_text

    def __str__(self):
        return self.tb_text


class TaskError(HpcrayError):
    """A task raised an exception. ``get`` raises a subclass that is also the original class.

    Attributes:
        function_name: the remote function's qualified name.
        cause: the original exception object (or ``None`` if it could not be transported).
        remote_traceback: the formatted traceback, headed by the rank and host that ran it.
    """

    def __init__(self, function_name, cause_repr, remote_traceback, cause=None):
        super().__init__(function_name, cause_repr, remote_traceback)
        self.function_name = function_name
        self.cause_repr = cause_repr
        self.remote_traceback = remote_traceback
        self.cause = cause

    def __reduce__(self):
        return (TaskError, (self.function_name, self.cause_repr, self.remote_traceback, self.cause))

    def __str__(self):
        return f"task {self.function_name} failed: {self.cause_repr}\n\n{self.remote_traceback}"

    def as_instanceof_cause(self):
        """Return an error that is an instance of both ``TaskError`` and the original class."""
        cause = self.cause
        if cause is None or not isinstance(cause, Exception):
            # A BaseException-only cause (SystemExit, KeyboardInterrupt, ...): an error that
            # were also one would escape ``except Exception`` and the driver's handlers, and
            # a SystemExit would end the script silently with its code.
            return self
        cause_cls = type(cause)
        if isinstance(cause, TaskError):
            return cause
        try:
            dual_cls = _DUAL_CLASSES.get(cause_cls)
            if dual_cls is None:
                dual_cls = type(f"TaskError({cause_cls.__name__})", (TaskError, cause_cls), {
                    "__init__": lambda self, *a, **k: None,
                    "__str__": TaskError.__str__,
                    "__reduce__": lambda self: (TaskError, (self.function_name, self.cause_repr,
                                                            self.remote_traceback, self.cause)),
                    "__module__": __name__,
                })
                _DUAL_CLASSES[cause_cls] = dual_cls
            error = dual_cls.__new__(dual_cls)
            error.args = cause.args
            error.function_name = self.function_name
            error.cause_repr = self.cause_repr
            error.remote_traceback = self.remote_traceback
            error.cause = cause
            error.__dict__.update(getattr(cause, "__dict__", {}))
            return error
        except TypeError:   # final classes, incompatible layouts (e.g. OSError subclasses)
            return self


_DUAL_CLASSES = {}
RayTaskError = TaskError


class GetTimeoutError(HpcrayError, TimeoutError):
    """``get`` (or ``wait`` helpers) ran out of time before the objects were ready."""


class TaskCancelledError(HpcrayError):
    """The task that would have produced this object was cancelled."""

    def __init__(self, task_id=None):
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self):
        return f"task {self.task_id} was cancelled" if self.task_id else "task was cancelled"


class SerializationError(HpcrayError, TypeError):
    """A value could not be pickled (an argument at ``.remote()``, a return value at ``get``)."""


class ObjectLostError(HpcrayError):
    """The object is gone: its owner freed it, or it belongs to a runtime that was shut down."""


class ObjectFreedError(ObjectLostError):
    """The object was freed on purpose (``hpcray._private.internal_api.free``), whoever still
    referred to it. Ray's name and meaning."""


class ObjectReconstructionFailedError(ObjectLostError):
    """An object lost with its node could not be made again (Ray's name; hpcray raises its
    subclass below when the task's attempts are spent)."""


class ObjectFetchTimedOutError(ObjectLostError):
    """Ray's name for a fetch that timed out; hpcray's fetches do not time out (a get with a
    timeout raises GetTimeoutError), so it is never raised: it exists for ``except``
    clauses written for Ray."""


class NodeDiedError(HpcrayError):
    """Ray's name for a node's death; never raised by hpcray, where a dead rank shows as
    WorkerCrashedError, ActorDiedError or OwnerDiedError on the work it affects: it exists
    for ``except`` clauses written for Ray."""


class RuntimeEnvSetupError(HpcrayError):
    """A task's or actor's ``runtime_env`` could not be set up where it runs (its
    working_dir is not there, for example)."""


class ObjectReconstructionFailedMaxAttemptsExceededError(ObjectReconstructionFailedError):
    """The only copy of the object was lost with its node, and the task that made it could
    not run again: its ``max_retries`` are spent (Ray's name and meaning)."""


class OwnerDiedError(ObjectLostError):
    """The object's owner (the rank that created it, or submitted its task) died: nobody can
    hand it out any more (Ray's name and meaning)."""


class ObjectStoreFullError(HpcrayError):
    """A node's object store has no room for an object, even after freeing what it could."""


class ResourceError(HpcrayError, ValueError):
    """A task asks for resources that no rank of the job has; it could never run."""


class TaskUnschedulableError(HpcrayError):
    """The task can never be placed where its scheduling strategy requires: a
    ``NodeAffinitySchedulingStrategy(soft=False)`` names a node that does not exist, has died,
    or has no rank that could ever run it. Ray's name and meaning."""


class ActorUnschedulableError(HpcrayError):
    """The actor can never be placed where its scheduling strategy requires (as
    :class:`TaskUnschedulableError`, for an actor). Ray's name and meaning."""


class RuntimeBrokenError(HpcrayError):
    """The runtime is shut down or broken; later calls fail fast with this error.

    When an internal fault broke it, the message names the rank, the host and the cause."""


class ConfigError(HpcrayError, ValueError):
    """A knob (``HPCRAY_*`` variable or launcher flag) has a value that does not parse."""


class JobDirError(HpcrayError):
    """A path is not a readable job directory, or its snapshot cannot be read
    (``hpcray status``, ``hpcray dashboard``, ``hpcray list``)."""


class WorkerCrashedError(HpcrayError):
    """The process running a task died, as Ray's worker process does: its worker process
    crashed (a segfault, ``os._exit``, SIGKILL, the memory monitor), the task called
    ``sys.exit()``, or its whole rank died. Either way it was retried up to its
    ``max_retries`` (3 by default, as in Ray) before this error.

    Attributes:
        function_name: the remote function's qualified name.
        exit_code: the worker process's exit status (negative: killed by that signal), or
            the ``sys.exit`` argument; ``None`` when unknown (a rank's death).
        remote_traceback: where it exited, headed by the rank and host.
        reason: what happened, when it was not ``sys.exit`` (a rank that died).
        attempts: how many times the task was started, when known.
    """

    def __init__(self, function_name=None, exit_code=None, remote_traceback=None, reason=None,
                 attempts=None):
        super().__init__(function_name, exit_code, remote_traceback, reason, attempts)
        self.function_name = function_name
        self.exit_code = exit_code
        self.remote_traceback = remote_traceback
        self.reason = reason
        self.attempts = attempts

    def __reduce__(self):
        return (WorkerCrashedError, (self.function_name, self.exit_code, self.remote_traceback,
                                     self.reason, self.attempts))

    def __str__(self):
        if self.reason is not None:
            text = f"task {self.function_name} failed: {self.reason}"
        else:
            text = (f"task {self.function_name} called sys.exit({self.exit_code!r}): the task "
                    f"failed (exit code {self.exit_code!r}); its rank goes on")
        if self.attempts is not None:
            text += f" ({self.attempts} attempt{'s' if self.attempts != 1 else ''})"
        if self.remote_traceback:
            text += f"\n\n{self.remote_traceback}"
        return text


class ActorError(HpcrayError):
    """Base class of errors about an actor rather than one of its calls (Ray's RayActorError)."""


class ActorDiedError(ActorError):
    """The actor is gone, or never came to be: killed, all its handles dropped, or its
    ``__init__`` raised. Then ``cause`` is the original exception and ``remote_traceback``
    its traceback."""

    def __init__(self, actor_name=None, actor_id=None, reason="", cause=None,
                 remote_traceback=None):
        super().__init__(actor_name, actor_id, reason)
        self.actor_name = actor_name
        self.actor_id = actor_id
        self.reason = reason
        self.cause = cause
        self.remote_traceback = remote_traceback

    def __reduce__(self):
        return (ActorDiedError, (self.actor_name, self.actor_id, self.reason, self.cause,
                                 self.remote_traceback))

    def __str__(self):
        text = f"actor {self.actor_name} ({self.actor_id}) is dead: {self.reason}"
        if self.remote_traceback:
            text += f"\n\n{self.remote_traceback}"
        return text


class OutOfMemoryError(HpcrayError):
    """The node ran low on memory and hpcray's memory monitor ended the worker process of
    this task (the newest retriable one of its node), as Ray's does; it was retried while
    ``max_retries`` allowed. The message gives the node's memory use and the threshold
    (``HPCRAY_MEMORY_USAGE_THRESHOLD``).

    Attributes:
        function_name: the remote function's qualified name.
        reason: what the monitor saw, and where.
        attempts: how many times the task was started.
    """

    def __init__(self, function_name=None, reason=None, attempts=None):
        super().__init__(function_name, reason, attempts)
        self.function_name = function_name
        self.reason = reason
        self.attempts = attempts

    def __str__(self):
        text = f"task {self.function_name} ran out of memory: {self.reason}"
        if self.attempts:
            text += f" (attempts: {self.attempts})"
        return text + (". Ask for fewer tasks at once (num_cpus, memory=) or more memory "
                       "per node, or raise HPCRAY_MEMORY_USAGE_THRESHOLD")


class ActorUnavailableError(ActorError):
    """The call was cut short because its actor's process (or rank) died, and the actor
    restarts (``max_restarts``): the call may or may not have run, and is not run again
    (``max_task_retries`` is spent). Later calls wait for the restart. Ray's name and
    meaning."""


RayError = HpcrayError
RaySystemError = RuntimeBrokenError
RayActorError = ActorError
