"""An actor's mailbox: the calls waiting to run, in the order each caller made them.

One FIFO queue per caller (a caller is a rank and the task it runs, or the driver): calls
from one caller run in submission order, as Ray promises, and a call still waiting for its
arguments holds back only that caller's later calls. Calls whose turn has come move to the
*runnable* queue, from which the host takes them as the actor's concurrency allows.

Pure state (no MPI, no lock of its own): ``actors/host.py`` drives it with the runtime lock
held, and ``tests/test_state_holders.py`` drives it alone.
"""
from collections import deque


class QueuedCall:
    """A call in a caller's queue: its spec, the argument objects here, how many missing."""
    __slots__ = ("call", "deps", "missing")

    def __init__(self, call, missing):
        self.call = call
        self.deps = {}                         # object id -> object record
        self.missing = missing


class Mailbox:
    def __init__(self):
        self.callers = {}                      # caller -> deque of QueuedCall
        self.runnable = deque()                # QueuedCall, in the order they may run

    def add(self, call):
        """Queue a call (its ``deps`` still to arrive, see :meth:`arrived`); return its entry.
        A call with nothing to wait for may be runnable at once."""
        entry = QueuedCall(call, len(call.deps))
        queue = self.callers.get(call.caller)
        if queue is None:
            if not entry.missing:              # nothing before it, nothing to wait for
                self.runnable.append(entry)
                return entry
            queue = self.callers[call.caller] = deque()
        queue.append(entry)
        if not entry.missing:
            self._advance(call.caller)
        return entry

    def arrived(self, entry, object_id, obj):
        """One argument of a queued call is here."""
        entry.deps[object_id] = obj
        entry.missing -= 1
        if entry.missing == 0:
            self._advance(entry.call.caller)

    def _advance(self, caller):
        """Move the caller's calls whose arguments are here, in order, to the runnable queue."""
        queue = self.callers.get(caller)
        while queue and queue[0].missing == 0:
            self.runnable.append(queue.popleft())
        if queue is not None and not queue:
            del self.callers[caller]

    def next(self):
        """The next runnable call's entry, or None."""
        return self.runnable.popleft() if self.runnable else None

    def cancel(self, task_id):
        """Remove a call that has not started; return it, or None if it is not here."""
        for caller, queue in list(self.callers.items()):
            for entry in queue:
                if entry.call.task_id == task_id:
                    queue.remove(entry)
                    if queue:
                        self._advance(caller)
                    else:
                        del self.callers[caller]
                    return entry.call
        for entry in self.runnable:
            if entry.call.task_id == task_id:
                self.runnable.remove(entry)
                return entry.call
        return None

    def drain(self):
        """Every call still here (waiting or runnable), removed."""
        calls = [entry.call for queue in self.callers.values() for entry in queue]
        calls += [entry.call for entry in self.runnable]
        self.callers.clear()
        self.runnable.clear()
        return calls

    def __bool__(self):
        return bool(self.callers or self.runnable)
