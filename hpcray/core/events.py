"""What one rank records of the work it sees, for the state API, the timeline and the
dashboard: always on, and cheap (a tuple appended per step of a task).

The rank that *owns* a task records its submission and its end (the results came back,
``finished``); the rank that *executes* it records when it began (which process runs it)
and when its results left (``ended``: a span for the timeline). A task that ends before the
rank next sends costs one event on each side: its submission (or beginning) is sent only if
it is still unfinished then (``take``), else it travels inside the end's event. Object transfers between
nodes, ``get`` waits, warnings, and a sample of the rank's load every status interval are
recorded too. Every turn, :meth:`EventLog.due` says whether it is time to send what was
recorded (at most every ``SEND_EVERY`` seconds, or sooner when much piled up); the rank sends
``take()`` to the head in one EVENTS message, where ``head/observer.py`` adds it up.

An event is a plain tuple whose first field is its kind (one letter, below); times are
``time.time()`` (the hosts of a cluster keep their clocks in step).
"""
import os
import time

from ..wire.objects import ERROR
from ..wire import serialization

# A task's events name it by id, name and actor id (its type follows: ``task_type``).
SUBMITTED = "S"    # (S, task_id, name, actor_id, time)
BEGAN = "B"        # (B, task_id, name, actor_id, pid, time)
ENDED = "E"        # (E, task_id, name, actor_id, pid, start, end, error)
FINISHED = "F"     # (F, task_id, name, actor_id, time, error, submitted)   at the owner
RETRIED = "R"      # (R, task_id, name, actor_id, time, why)
TRANSFER = "T"     # (T, object_id, nbytes, from_node, to_node, start, end)
WAITED = "G"       # (G, pid, count, start, end)               a get that waited
NOTE = "W"         # (W, time, level, message)                warnings and errors
LOAD = "L"         # (L, time, {sample})                      the rank's load

NORMAL_TASK, ACTOR_TASK, ACTOR_CREATION_TASK = "NORMAL_TASK", "ACTOR_TASK", "ACTOR_CREATION_TASK"

SEND_EVERY = 0.25        # seconds between two EVENTS of a rank (fewer when idle: nothing new)
SEND_AT_MOST = 2000      # events piled up that are sent at once
SHORTEST_WAIT = 0.001    # get waits shorter than this are not worth a span

# Ray's error types (``list_tasks``' ``error_type``) by the exception a failure carries
ERROR_TYPES = {"TaskError": "TASK_EXECUTION_EXCEPTION", "RayTaskError": "TASK_EXECUTION_EXCEPTION",
               "WorkerCrashedError": "WORKER_DIED", "OutOfMemoryError": "OUT_OF_MEMORY",
               "TaskCancelledError": "TASK_CANCELLED", "ActorDiedError": "ACTOR_DIED",
               "ActorUnavailableError": "ACTOR_UNAVAILABLE",
               "TaskUnschedulableError": "TASK_UNSCHEDULABLE_ERROR",
               "ActorUnschedulableError": "ACTOR_UNSCHEDULABLE_ERROR",
               "ObjectLostError": "OBJECT_LOST", "RuntimeEnvSetupError": "RUNTIME_ENV_SETUP_FAILED"}


def task_type(task_id, actor_id):
    """Ray's type of a task: a plain one, an actor's construction, or a method call."""
    if actor_id is None:
        return NORMAL_TASK
    return ACTOR_CREATION_TASK if task_id == actor_id else ACTOR_TASK


def describe_error(obj):
    """``(Ray's error type, the message with the remote traceback)`` of an Error record."""
    try:
        error = serialization.loads(obj[1])
    except Exception as why:                   # (an error nobody can load: say so)
        return "TASK_EXECUTION_EXCEPTION", f"(the error could not be loaded: {why})"
    name = type(error).__name__
    remote = getattr(error, "remote_traceback", None)
    cause = getattr(error, "cause_repr", None)
    if remote:
        message = f"{cause}\n{remote}" if cause else remote
    else:
        message = f"{name}: {error}"
    return ERROR_TYPES.get(name, name), message


class ProcessLoad:
    """A load probe: CPU (percent of one core) and resident memory of this process and its
    children (a rank's worker processes), by psutil."""

    def __init__(self):
        import psutil
        self.psutil = psutil
        self.me = psutil.Process()
        self.known = {}                        # pid -> psutil.Process (cpu_percent's state)

    def __call__(self):
        psutil = self.psutil
        processes = [self.me]
        try:
            processes += self.me.children(recursive=True)
        except psutil.Error:
            pass
        cpu = rss = 0.0
        known = {}
        for process in processes:
            process = self.known.get(process.pid, process)
            try:
                with process.oneshot():
                    cpu += process.cpu_percent()
                    rss += process.memory_info().rss
                known[process.pid] = process
            except psutil.Error:
                continue
        self.known = known
        return {"cpu": round(cpu, 1), "rss": int(rss), "pid": os.getpid()}


class EventLog:
    """What this rank recorded and has not sent yet (lock held, but for :meth:`note`)."""

    def __init__(self, enabled=True, sample_every=1.0):
        self.enabled = enabled
        self.pending = []
        self.begun = {}                        # task_id -> (start, pid) of work running here
        self.unsent_begun = {}                 # task_id -> BEGAN event not sent yet
        self.unsent_submitted = {}             # task_id -> SUBMITTED event not sent yet
        self.last_sent = 0.0
        self.sample_every = sample_every
        self.next_sample = 0.0
        self.probes = []                       # fn() -> dict merged into each load sample
        self.pid = os.getpid()

    # ------------------------------------------------------------------ owner side
    def submitted(self, spec):
        if self.enabled:
            self.unsent_submitted[spec.task_id] = (SUBMITTED, spec.task_id, spec.name,
                                                   spec.actor_id, time.time())

    def finished(self, spec, results):
        """The results of a task this rank owns came back (or it failed without running)."""
        if self.enabled:
            unsent = self.unsent_submitted.pop(spec.task_id, None)
            obj = results[0][1] if results else None
            self.pending.append((FINISHED, spec.task_id, spec.name, spec.actor_id, time.time(),
                                 None if obj is None or obj[0] != ERROR else describe_error(obj),
                                 None if unsent is None else unsent[4]))

    def retried(self, spec, why):
        if self.enabled:
            self.pending.append((RETRIED, spec.task_id, spec.name, spec.actor_id, time.time(),
                                 why))

    # ------------------------------------------------------------------ executor side
    def began(self, spec, pid=None):
        """A task or call starts here, in process ``pid`` (None: this one)."""
        if self.enabled:
            now = time.time()
            pid = pid or self.pid
            self.begun[spec.task_id] = (now, pid)
            self.unsent_begun[spec.task_id] = (BEGAN, spec.task_id, spec.name, spec.actor_id,
                                               pid, now)

    def ended(self, spec, results):
        """The results of a task or call that ran here leave (a span, if it began here)."""
        if self.enabled:
            begun = self.begun.pop(spec.task_id, None)
            if begun is not None:
                if self.unsent_begun:
                    self.unsent_begun.pop(spec.task_id, None)
                obj = results[0][1] if results else None
                self.pending.append((ENDED, spec.task_id, spec.name, spec.actor_id, begun[1],
                                     begun[0], time.time(), None if obj is None
                                     or obj[0] != ERROR else describe_error(obj)))

    def crashed(self, spec, why):
        """The process running a task or call here died (a failed span)."""
        if self.enabled:
            begun = self.begun.pop(spec.task_id, None)
            self.unsent_begun.pop(spec.task_id, None)
            if begun is not None:
                self.pending.append((ENDED, spec.task_id, spec.name, spec.actor_id, begun[1],
                                     begun[0], time.time(), ("WORKER_DIED", why)))

    # ------------------------------------------------------------------ the rest
    def transfer(self, object_id, nbytes, from_node, to_node, start):
        if self.enabled:
            self.pending.append((TRANSFER, object_id, nbytes, from_node, to_node, start,
                                 time.time()))

    def waited(self, count, start, pid=None):
        """A ``get`` of ``count`` objects that began at ``start`` is over."""
        if self.enabled:
            now = time.time()
            if now - start >= SHORTEST_WAIT:
                self.pending.append((WAITED, pid or self.pid, count, start, now))

    def note(self, level, message):
        """A warning or an error the job's user should see in the dashboard (any thread:
        list.append is atomic)."""
        if self.enabled:
            self.pending.append((NOTE, time.time(), level, message))

    # ------------------------------------------------------------------ sending
    def due(self, now):
        """Whether it is time to send (and to sample the load first)."""
        if now >= self.next_sample:
            self.next_sample = now + self.sample_every
            sample = {}
            for probe in self.probes:
                try:
                    sample.update(probe())
                except Exception as error:     # a sample is not worth breaking the rank
                    sample["probe_error"] = repr(error)
            self.pending.append((LOAD, time.time(), sample))
        waiting = len(self.pending) + len(self.unsent_submitted) + len(self.unsent_begun)
        return bool(waiting) and (now - self.last_sent >= SEND_EVERY
                                  or waiting >= SEND_AT_MOST)

    def has_news(self):
        return bool(self.pending or self.unsent_submitted or self.unsent_begun)

    def take(self, now):
        """What to send: the work still unfinished first (its submission or beginning, once),
        then everything recorded since."""
        taken = []
        if self.unsent_submitted:
            taken.extend(self.unsent_submitted.values())
            self.unsent_submitted = {}
        if self.unsent_begun:
            taken.extend(self.unsent_begun.values())
            self.unsent_begun = {}
        taken.extend(self.pending)
        self.pending = []
        self.last_sent = now
        return taken

    def forget(self):
        """A new session: what ran in the old one is over."""
        self.begun.clear()
        self.unsent_begun.clear()
        self.unsent_submitted.clear()


NOT_RECORDING = EventLog(enabled=False)      # the roles' default until a runtime wires its own
