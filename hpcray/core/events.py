"""What one rank records of the work it sees, for the state API, the timeline and the
dashboard: always on, and cheap (a tuple appended to a list per step of a task, added up
when the rank sends; what the head receives per quarter second is bounded, whatever the
task rate).

The rank that *owns* a task records its submission and its end (the results came back,
``finished``); the rank that *executes* it records when it began (which process runs it)
and when its results left (``ended``: a span for the timeline). Short work is added up on
the rank: a task that ends before the rank next sends is reported only as a count per
function (``DONE``) and, for the newest ones, as a record (``RECENT``); its time as a sum per
function (``TIMING``) and, for the newest, as a span (``SPANS``). A task still unfinished
when the rank sends is reported by itself (``SUBMITTED``), and then its end too
(``FINISHED``), as are failures, retries and actors' constructions. The work running on an
executing rank is reported whole with each send (``RUNNING``). Object transfers between
nodes, ``get`` waits, warnings, and a sample of the rank's load every status interval are
recorded too. Every turn, :meth:`EventLog.due` says whether it is time to send (at most
every ``SEND_EVERY`` seconds); the rank sends ``take()`` to the head in one EVENTS message,
where ``head/observer.py`` adds it up.

An event is a plain tuple whose first field is its kind (one letter, below); times are
``time.time()`` (the hosts of a cluster keep their clocks in step).
"""
import os
import time
from bisect import bisect_left

from ..wire.objects import ERROR
from ..wire import serialization

# A task's events name it by id, name and actor id (its type follows: ``task_type``).
SUBMITTED = "S"    # (S, task_id, name, actor_id, time)            at the owner
FINISHED = "F"     # (F, task_id, name, actor_id, time, error, submitted)
RETRIED = "R"      # (R, task_id, name, actor_id, time, why)
DONE = "D"         # (D, {name: [a task_id, actor_id, count]})     short tasks that finished
RECENT = "N"       # (N, [(task_id, name, actor_id, end, submitted), ...])  the newest of them
ENDED = "E"        # (E, task_id, name, actor_id, pid, start, end, error)  at the executor
TIMING = "M"       # (M, {name: [a task_id, actor_id, count, seconds, longest, [buckets],
                   #            {actor_id: calls}]})
SPANS = "P"        # (P, [ENDED event, ...])                       the newest spans
RUNNING = "U"      # (U, [(task_id, name, actor_id, pid, start), ...])  running here now
TRANSFER = "T"     # (T, object_id, nbytes, from_node, to_node, start, end)
WAITED = "G"       # (G, pid, count, start, end)               a get that waited
NOTE = "W"         # (W, time, level, message)                warnings and errors
LOAD = "L"         # (L, time, {sample})                      the rank's load

NORMAL_TASK, ACTOR_TASK, ACTOR_CREATION_TASK = "NORMAL_TASK", "ACTOR_TASK", "ACTOR_CREATION_TASK"

SEND_EVERY = 0.25        # seconds between two EVENTS of a rank (fewer when idle: nothing new)
SEND_AT_MOST = 2000      # events piled up that are sent at once
SHORTEST_WAIT = 0.001    # get waits shorter than this are not worth a span
RECORDS_PER_SEND = 200   # newest ended tasks a rank reports as records, per send
REPORT_PENDING_AFTER = 1.0   # seconds unfinished work waits before it is reported by itself
# Seconds at most between work ending on a rank and the head knowing it: a rank with news
# sends every SEND_EVERY, and looks every 50 ms (runtime.CHECK_EVERY), plus a margin.
REPORTED_WITHIN = SEND_EVERY + 0.05 + 0.05
SPANS_PER_SEND = 500     # newest spans a rank reports, per send
DURATION_BOUNDS = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0)   # histogram buckets (s)

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
    children (a rank's worker processes), by psutil. Finding the children means a look at
    every process of the host, so it is done every ``CHILDREN_EVERY`` samples only (and
    when one of them ended); a sample then reads two small /proc files per process."""
    CHILDREN_EVERY = 10

    def __init__(self):
        import psutil
        self.psutil = psutil
        self.me = psutil.Process()
        self.processes = [self.me]             # (psutil keeps cpu_percent's state in each)
        self.samples = 0

    def __call__(self):
        psutil = self.psutil
        if self.samples % self.CHILDREN_EVERY == 0:
            try:
                known = {process.pid: process for process in self.processes}
                self.processes = [self.me] + [known.get(child.pid, child) for child in
                                              self.me.children(recursive=True)]
            except psutil.Error:
                pass
        self.samples += 1
        cpu = rss = 0.0
        for process in self.processes:
            try:
                with process.oneshot():
                    cpu += process.cpu_percent()
                    rss += process.memory_info().rss
            except psutil.Error:
                self.samples = 0               # (one ended: look for the children again)
        return {"cpu": round(cpu, 1), "rss": int(rss), "pid": os.getpid()}


class EventLog:
    """What this rank recorded and has not sent yet (lock held, but for :meth:`note`)."""

    def __init__(self, enabled=True, sample_every=1.0):
        self.enabled = enabled
        self.pending = []                      # events sent as they are
        self.last_finished = 0.0               # when a task this rank owns last came back
        self.begun = {}                        # task_id -> (start, pid, name, actor_id): runs here
        self.one_at_a_time = set()             # actors whose calls queue in their process and
        self.last_end = {}                     # run one at a time -> end of their last call
        self.running_sent = False              # the last send reported work running here
        self.unsent_submitted = {}             # task_id -> SUBMITTED event not sent yet
        self.done_since = []                   # (task_id, name, actor_id, end, submitted) of
        #                                        short tasks that finished since the last send
        self.ended_since = []                  # ENDED events of the work that ran here since
        self.last_sent = 0.0
        self.next_check = 0.0                  # (the runtime's turn hook looks no sooner)
        self.report_pending_after = REPORT_PENDING_AFTER
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
        if not self.enabled:
            return
        task_id, name = spec.task_id, spec.name
        unsent = self.unsent_submitted.pop(task_id, None)
        obj = results[0][1] if results else None
        self.last_finished = now = time.time()
        if unsent is None or (obj is not None and obj[0] == ERROR):
            # the head knows it as submitted (or it failed): its end, by itself
            self.pending.append((FINISHED, task_id, name, spec.actor_id, now,
                                 None if obj is None or obj[0] != ERROR else describe_error(obj),
                                 None if unsent is None else unsent[4]))
            return
        self.done_since.append((task_id, name, spec.actor_id, now, unsent[4]))   # (take adds
        #                                                                       them up)

    def retried(self, spec, why):
        if self.enabled:
            submitted = self.unsent_submitted.pop(spec.task_id, None)
            if submitted is not None:          # (the head must know it to count its end)
                self.pending.append(submitted)
            self.pending.append((RETRIED, spec.task_id, spec.name, spec.actor_id, time.time(),
                                 why))

    # ------------------------------------------------------------------ executor side
    def began(self, spec, pid=None, one_at_a_time=False):
        """A task or call starts here, in process ``pid`` (None: this one). ``one_at_a_time``:
        an actor call handed to a process that queues its actor's calls and runs them in
        turn; it runs once the call before it ended (its span starts then)."""
        if self.enabled:
            self.begun[spec.task_id] = (time.time(), pid or self.pid, spec.name, spec.actor_id)
            if one_at_a_time:
                self.one_at_a_time.add(spec.actor_id)

    def ended(self, spec, results):
        """The results of a task or call that ran here leave (a span, if it began here)."""
        if not self.enabled:
            return
        begun = self.begun.pop(spec.task_id, None)
        if begun is None:
            return
        start, pid, name, actor_id = begun
        task_id = spec.task_id
        now = time.time()
        if actor_id in self.one_at_a_time:     # (it waited for the call before it)
            start = max(start, self.last_end.get(actor_id, start))
            self.last_end[actor_id] = now
        obj = results[0][1] if results else None
        if obj is not None and obj[0] == ERROR:
            event = (ENDED, task_id, name, actor_id, pid, start, now, describe_error(obj))
            self.pending.append(event)         # failures and constructions: by themselves
        else:
            event = (ENDED, task_id, name, actor_id, pid, start, now, None)
            if task_id == actor_id:
                self.pending.append(event)
        self.ended_since.append(event)         # (take adds their times up)

    def crashed(self, spec, why):
        """The process running a task or call here died (a failed span)."""
        if self.enabled:
            begun = self.begun.pop(spec.task_id, None)
            if begun is not None:
                start, pid, name, actor_id = begun
                if actor_id in self.one_at_a_time:
                    start = max(start, self.last_end.get(actor_id, start))
                self.pending.append((ENDED, spec.task_id, name, actor_id, pid, start,
                                     time.time(), ("WORKER_DIED", why)))

    def actor_over(self, actor_id):
        """An actor hosted here is gone: forget how its calls queued."""
        self.one_at_a_time.discard(actor_id)
        self.last_end.pop(actor_id, None)

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
        return self.has_news() and (now - self.last_sent >= SEND_EVERY
                                    or len(self.pending) + len(self.ended_since)
                                    + len(self.done_since) >= SEND_AT_MOST)

    def unreported_for(self, now):
        """Seconds until the head surely knows how the tasks this rank got back so far ran
        (their executors' reports are on their way): 0 once it does."""
        return max(0.0, self.last_finished + REPORTED_WITHIN - now) if self.enabled else 0.0

    def has_news(self):
        return bool(self.pending or self.unsent_submitted or self.done_since
                    or self.ended_since or self.begun or self.running_sent)

    def take(self, now):
        """What to send: the work still unfinished (its submission, once; what runs here),
        then everything recorded since, short work added up."""
        taken = []
        unsent = self.unsent_submitted
        if unsent:
            # Work submitted in the last REPORT_PENDING_AFTER seconds is not reported yet:
            # most of it is over before the next send (a burst of short tasks), and then it
            # costs nothing but its count. (Oldest first: stop at the first young one.)
            cutoff = time.time() - self.report_pending_after
            old = []
            for task_id, event in unsent.items():
                if event[4] > cutoff:
                    break
                old.append(task_id)
            for task_id in old:
                taken.append(unsent.pop(task_id))
        taken.extend(self.pending)
        self.pending = []
        if self.done_since:
            done_since, self.done_since = self.done_since, []
            done = {}
            for entry in done_since:
                counted = done.get(entry[1])
                if counted is None:
                    done[entry[1]] = [entry[0], entry[2], 1]
                else:
                    counted[2] += 1
            taken.append((DONE, done))
            taken.append((RECENT, done_since[-RECORDS_PER_SEND:]))
        if self.ended_since:
            ended_since, self.ended_since = self.ended_since, []
            taken.append((TIMING, _timing(ended_since)))
            spans = [event for event in ended_since[-SPANS_PER_SEND:]
                     if event[7] is None and event[1] != event[3]]   # (the rest went alone)
            if spans:
                taken.append((SPANS, spans))
        if self.begun or self.running_sent:
            taken.append((RUNNING, self._running()))
            self.running_sent = bool(self.begun)
        self.last_sent = now
        return taken

    def _running(self):
        """What runs here now: every task and call begun, but of an actor whose calls run
        one at a time, its oldest call only (the others wait in its process)."""
        one_at_a_time = self.one_at_a_time
        if not one_at_a_time:
            return [(task_id, name, actor_id, pid, start)
                    for task_id, (start, pid, name, actor_id) in self.begun.items()]
        running, shown = [], set()
        for task_id, (start, pid, name, actor_id) in self.begun.items():
            if actor_id in one_at_a_time:
                if actor_id in shown:
                    continue
                shown.add(actor_id)
                start = max(start, self.last_end.get(actor_id, start))
            running.append((task_id, name, actor_id, pid, start))
        return running

    def forget(self):
        """A new session: what ran in the old one is over."""
        self.begun.clear()
        self.one_at_a_time.clear()
        self.last_end.clear()
        self.unsent_submitted.clear()
        self.done_since.clear()
        self.ended_since.clear()


def _timing(ended):
    """ENDED events added up per name: the TIMING entry (see above)."""
    timing = {}
    for _, task_id, name, actor_id, _, start, end, _ in ended:
        seconds = end - start
        entry = timing.get(name)
        if entry is None:
            entry = timing[name] = [task_id, actor_id, 0, 0.0, 0.0,
                                    [0] * (len(DURATION_BOUNDS) + 1), {}]
        entry[2] += 1
        entry[3] += seconds
        if seconds > entry[4]:
            entry[4] = seconds
        entry[5][bisect_left(DURATION_BOUNDS, seconds)] += 1
        if actor_id is not None and task_id != actor_id:
            calls = entry[6]
            calls[actor_id] = calls.get(actor_id, 0) + 1
    return timing


NOT_RECORDING = EventLog(enabled=False)      # the roles' default until a runtime wires its own
