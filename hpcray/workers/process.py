"""A worker process's loop: take work from the rank, run it, answer.

Runs in the forked worker (``launch/worker.py`` is its entry). Tasks run on the main thread,
one at a time; their results go back in ``DONE``, large ones written into the node's store
first. ``SIGINT`` from the rank (``cancel`` without ``force``) raises KeyboardInterrupt in the
task, never in the middle of reading the socket.
"""
import ctypes
import faulthandler
import os
import signal
import socket
import sys
import threading
import time

from ..core import current, invoke
from ..wire.objects import STORED, from_wire
from . import protocol


class Executor:
    """What ``core/invoke.py`` needs of whoever runs a call, in a worker process."""

    def __init__(self, link):
        self.link = link
        self.store = link.store
        self.rank = link.rank
        self.inline_limit = link.config.inline_limit
        self.functions = {}
        self._where = (f"rank {link.rank} on host {socket.gethostname()} "
                       f"(worker process {os.getpid()})")

    def where(self):
        return self._where

    def await_borrows(self, ids):
        self.link.report_refs(ids)


class Worker:
    """The loops of one worker process: the main thread's, and helper threads' when work
    comes while every thread is busy (the tasks there wait in ``get``)."""

    def __init__(self, link):
        self.link = link
        self.executor = Executor(link)
        self.running = None                    # the task on the main thread, if any
        self.threads = {}                      # task id -> thread ident running it
        self.helpers = 0                       # helper threads alive
        self.idle_helpers = 0
        self.lock = threading.Lock()
        link.unclaimed = self.add_helper
        link.work_handlers[protocol.INTERRUPT] = self.on_interrupt_message

    def receive_deps(self, deps):
        """Argument records the rank sent (stored ones pinned for us, with their page)."""
        store = self.link.store
        objects = {}
        for object_id, (raw, start) in deps.items():
            obj = from_wire(raw)
            if obj.kind == STORED:
                store.starts[obj.slot] = start
            objects[object_id] = obj
        return objects

    def run_task(self, spec, deps):
        link = self.link
        objects = self.receive_deps(deps) if deps else deps
        stack = current.task_stack()
        stack.append(spec)
        started = time.perf_counter()
        main = threading.current_thread() is threading.main_thread()
        if main:
            self.running = spec
        self.threads[spec.task_id] = threading.get_ident()
        results = contained = None
        try:
            results, contained = invoke.execute(self.executor, spec, objects)
        except KeyboardInterrupt as error:     # cancelled between the call and its end
            results = invoke.failed(self.executor, spec, error)
        finally:
            self.threads.pop(spec.task_id, None)
            if main:
                self.running = None
            stack.pop()
        seconds = time.perf_counter() - started
        sys.stdout.flush()
        sys.stderr.flush()
        link.send(protocol.done(spec.task_id,
                                [(object_id, tuple(obj)) for object_id, obj in results],
                                seconds, contained or None, link.store.take_written()),
                  notes_first=False)             # (refs in the results may be dropped)

    def on_interrupt(self, signum, frame):
        """SIGINT: the rank cancels a task of this process (``cancel`` without ``force``).
        The main thread's task stops here, if it is the only one (a task on another thread
        gets it by ``INTERRUPT``)."""
        if self.running is None or len(self.threads) != 1:
            return                             # it is over already, or it is not ours
        if self.link.in_channel:
            self.link.interrupt_pending = True     # raised once the read is complete
            return
        raise KeyboardInterrupt

    def on_interrupt_message(self, message):
        """INTERRUPT: KeyboardInterrupt in the thread that runs the task (if it is not the
        main thread, whose SIGINT does it)."""
        ident = self.threads.get(message[1])
        if ident is not None and ident != threading.main_thread().ident:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                       ctypes.py_object(KeyboardInterrupt))

    def add_helper(self):
        """Work came while every thread is busy: a thread to run it."""
        with self.lock:
            if self.idle_helpers:
                return                         # one is on its way to take it
            self.helpers += 1
            self.idle_helpers += 1
        threading.Thread(target=self.serve, args=(True,), name="hpcray-worker-helper",
                         daemon=True).start()

    def serve(self, helper=False):
        link = self.link
        while True:
            message = link.next_work()
            if helper:
                with self.lock:
                    self.idle_helpers -= 1
            kind = message[0]
            if kind == protocol.RUN:
                self.run_task(message[1], message[2])
            else:
                raise RuntimeError(f"a worker process got an unknown message {kind!r}")
            if helper:
                with self.lock:
                    if self.idle_helpers:      # enough threads wait: this one leaves
                        self.helpers -= 1
                        return
                    self.idle_helpers += 1


def serve(link):
    """Run the worker loop until the rank says EXIT or goes away."""
    worker = Worker(link)
    signal.signal(signal.SIGINT, worker.on_interrupt)
    faulthandler.enable()                      # a crash prints where (the rank reports it)
    faulthandler.register(signal.SIGUSR1, all_threads=True)   # stack dumps, as on ranks
    try:
        worker.serve()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
