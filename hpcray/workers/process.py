"""A worker process's loop: take work from the rank, run it, answer.

Runs in the forked worker (``launch/worker.py`` is its entry). Tasks run on the main thread,
one at a time; their results go back in ``DONE``, large ones written into the node's store
first. ``SIGINT`` from the rank (``cancel`` without ``force``) raises KeyboardInterrupt in the
task, never in the middle of reading the socket.

Actors: the process keeps their instances (``ACTOR_NEW`` builds one, ``ACTOR_END`` drops
it); the rank keeps their mailboxes and sends a call (``ACTOR_CALL``) only when the actor may
run it, so a plain actor's calls come one at a time. Calls of several actors of one process
run on the threads that are free (a helper thread starts when none is), an async actor's on
the process's event loop thread.
"""
import asyncio
import ctypes
import faulthandler
import os
import signal
import socket
import sys
import threading
import time
from collections import deque

from ..actors.host import construct, current_call, run_async_call, start_event_loop
from ..core import current, invoke, output
from ..wire import serialization
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

    def emit_item(self, spec, index, obj, contained):
        """A generator task yielded item ``index``: to the rank now, which sends it on."""
        link = self.link
        link.send(protocol.item(spec.task_id, index, tuple(obj), contained,
                                link.store.take_written()), notes_first=False)
        if type(spec.stream) is int:           # back-pressure: the rank says when the
            link.request("wait_consumed", spec.task_id, index + 2 - spec.stream)  # caller
        return True                            # took enough (a cancel interrupts the wait)


class Worker:
    """The loops of one worker process: the main thread's, and helper threads' when work
    comes while every thread is busy (the tasks there wait in ``get``)."""

    def __init__(self, link):
        self.link = link
        self.executor = Executor(link)
        self.running = None                    # the task on the main thread, if any
        self.threads = {}                      # task id -> thread ident running it
        self.waiting = 0                       # threads waiting for work (or starting to)
        self.hosts_actors = False              # keep a thread reading while calls run
        self.lock = threading.Lock()
        self.actors = {}                       # actor id -> instance
        self.async_actors = set()              # ids of those whose calls run on the loop
        self.one_at_a_time = set()             # ids of plain actors (max_concurrency=1)
        self.queues = {}                       # plain actor id -> calls after the running one
        self.classes = {}                      # class id -> class
        self.loop = None                       # event loop of the async actors here
        self.held = {}                         # actor id -> the resources it holds
        self.captures = {}                     # actor id -> its placement group strategy,
                                               # when it captures child tasks
        self.async_calls = {}                  # task id -> future of a running async call
        self.cancelled_calls = set()           # ids of async calls cancelled while running
        link.unclaimed = self.add_helper
        link.work_handlers[protocol.INTERRUPT] = self.on_interrupt_message
        link.work_handlers[protocol.ACTOR_END] = self.on_actor_end
        link.work_handlers[protocol.ACTOR_CALL] = self.on_actor_call
        link.work_handlers[protocol.CANCEL_CALL] = self.on_cancel_call
        link.work_handlers[protocol.RUN] = self.on_run
        link.before_wait = self.release_ahead
        self.ahead = deque()                   # RUN messages sent ahead of their turn

    def receive_deps(self, deps):
        """Argument records the rank sent (stored ones pinned for us, with their page)."""
        receive = self.link.store.receive
        return {object_id: receive(raw, start) for object_id, (raw, start) in deps.items()}

    def _over(self, spec, objects):
        """The work is over: its argument records and its get cache entries go."""
        if objects:
            self.link.store.release(objects.values())
        self.link.task_over(spec.task_id)

    def _give_back(self, deps):
        """Argument records of work that will not run: the pins taken for us go back."""
        for raw, start in (deps or {}).values():
            if start is not None:
                self.link.unpinned.extend([raw[3]] * len(raw[6]))

    def run_task(self, spec, deps):
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
            self._over(spec, objects)
        self._answer(spec, results, contained, time.perf_counter() - started)

    def _answer(self, spec, results, contained, seconds):
        output.end_lines()                     # (what it printed goes ahead of its results)
        sys.stdout.flush()
        sys.stderr.flush()
        link = self.link
        link.send(protocol.done(spec.task_id,
                                [(object_id, tuple(obj)) for object_id, obj in results],
                                seconds, contained or None, link.store.take_written()),
                  notes_first=False)             # (refs in the results may be dropped)

    # ------------------------------------------------------------------ actors
    def new_actor(self, spec, deps):
        """ACTOR_NEW: build the actor here; its one result says whether that worked."""
        objects = self.receive_deps(deps) if deps else {}
        started = time.perf_counter()
        task = spec.construction()
        self.threads[task.task_id] = threading.get_ident()
        try:                                   # (a process of its own: its runtime_env
            instance, failure = construct(self.executor, spec, objects, self.classes,
                                          keep_env=True)           # is set for good)
        finally:
            self.threads.pop(task.task_id, None)
            self._over(task, objects)
        if failure is None:
            self.actors[spec.actor_id] = instance
            if invoke.captures_children(spec.strategy):
                self.captures[spec.actor_id] = spec.strategy
            if spec.resources:
                self.held[spec.actor_id] = spec.resources
            if spec.is_async:
                self.async_actors.add(spec.actor_id)
            elif spec.max_concurrency == 1:
                self.one_at_a_time.add(spec.actor_id)
            failure = serialization.encode(None)
        self._answer(task, [(spec.actor_id, failure)], None, time.perf_counter() - started)

    def on_actor_end(self, message):
        """ACTOR_END: the actor is over (its running calls' answers are dropped)."""
        self.actors.pop(message[1], None)
        self.async_actors.discard(message[1])
        self.one_at_a_time.discard(message[1])
        self.held.pop(message[1], None)
        self.captures.pop(message[1], None)

    def on_actor_call(self, message):
        """ACTOR_CALL, as it is read (so in the order the rank sent them): an async actor's
        call goes to the event loop; a plain actor's waits behind its running call (the
        rank sends several ahead); others go to a free thread."""
        call = message[1]
        actor_id = call.actor_id
        if actor_id in self.async_actors:
            objects = self.receive_deps(message[2]) if message[2] else message[2]
            loop = self._event_loop()
            with self.lock:                    # (before the call can end and pop it)
                self.async_calls[call.task_id] = asyncio.run_coroutine_threadsafe(
                    self._run_async(call, self.actors.get(actor_id), objects), loop)
            return
        if actor_id in self.one_at_a_time:
            with self.lock:
                queue = self.queues.get(actor_id)
                if queue is not None:          # a call of this actor runs: this one after
                    queue.append(message)
                    return
                self.queues[actor_id] = deque()
        self.link.queue_work(message)

    def on_cancel_call(self, message):
        """CANCEL_CALL: a call waiting behind its actor's running call is dropped; a running
        call of an async actor has its coroutine cancelled (it ends as cancelled)."""
        task_id = message[1]
        with self.lock:
            running = self.async_calls.get(task_id)
            if running is not None:
                self.cancelled_calls.add(task_id)
                running.cancel()               # (CancelledError in the coroutine)
                return
            for queue in self.queues.values():
                for queued in queue:
                    if queued[1].task_id == task_id:
                        queue.remove(queued)
                        break
                else:
                    continue
                break
            else:
                return
        call = queued[1]
        self._give_back(queued[2])
        cancelled = serialization.cancelled(task_id)
        self._answer(call, [(object_id, cancelled) for object_id in call.return_ids()], None,
                     0.0)

    def run_call(self, call, deps):
        """Run a method call on this thread, then the calls of a plain actor that queued
        behind it, in their order."""
        actor_id = call.actor_id
        self._run_call(call, self.receive_deps(deps) if deps else deps,
                       self.actors.get(actor_id))
        if actor_id not in self.queues:
            return
        while True:
            with self.lock:
                queue = self.queues.get(actor_id)
                if not queue:
                    self.queues.pop(actor_id, None)
                    return
                message = queue.popleft()
            call, deps = message[1], message[2]
            self._run_call(call, self.receive_deps(deps) if deps else deps,
                           self.actors.get(actor_id))

    def _run_call(self, call, objects, instance):
        call.strategy = self.captures.get(call.actor_id)   # (its tasks join its group)
        call.resources = self.held.get(call.actor_id, call.resources)   # (what it holds)
        stack = current.task_stack()
        stack.append(call)
        token = current_call.set(call)
        self.threads[call.task_id] = threading.get_ident()
        started = time.perf_counter()
        results = contained = exit_reason = None
        try:
            function = invoke.actor_method(instance, call.func_id)
            if function is None:
                results = invoke.failed(self.executor, call, _missing(call, instance))
            else:
                results, contained = invoke.execute(self.executor, call, objects, function)
        except invoke.ActorExit as exit_:
            exit_reason = exit_.reason
        except KeyboardInterrupt as error:
            results = invoke.failed(self.executor, call, error)
        finally:
            self.threads.pop(call.task_id, None)
            current_call.reset(token)
            stack.pop()
            self._over(call, objects)
        self._call_over(call, results, contained, exit_reason, time.perf_counter() - started)

    def _call_over(self, call, results, contained, exit_reason, seconds):
        if exit_reason is None:
            self._answer(call, results, contained, seconds)
            return
        self.actors.pop(call.actor_id, None)
        output.end_lines()
        sys.stdout.flush()
        sys.stderr.flush()
        self.link.send(protocol.actor_exit(call.task_id, exit_reason))

    async def _run_async(self, call, instance, objects):
        """One call of an async actor, on the event loop."""
        started = time.perf_counter()
        try:
            results, contained, exit_reason = await run_async_call(self.executor, call,
                                                                   instance, objects)
        finally:
            self._over(call, objects)
            with self.lock:
                self.async_calls.pop(call.task_id, None)
                cancelled = call.task_id in self.cancelled_calls
                self.cancelled_calls.discard(call.task_id)
        if cancelled:                          # (whatever the coroutine did with it)
            results, contained, exit_reason = invoke.cancelled(call), None, None
        self._call_over(call, results, contained, exit_reason, time.perf_counter() - started)

    def _event_loop(self):
        with self.lock:
            if self.loop is None:
                self.loop = start_event_loop()
        return self.loop

    def on_run(self, message):
        """RUN, as it is read: a task sent ahead waits for the running one to end (unless
        a thread is idle); others go to a thread at once."""
        if message[3]:
            link = self.link
            with link.work_lock:
                if not link.work_waiters and not link.waits_now:
                    self.ahead.append(message)
                    return
        self.link.queue_work(message)

    def next_for_main(self):
        """The main thread's next work: the tasks sent ahead first, once the messages
        already here are handled (a cancel of one may be among them)."""
        self.link.drain()
        return self.link.next_work(self.ahead)     # (atomic with on_run's check)

    def release_ahead(self):
        """A task is about to wait in get or wait: the tasks sent ahead, and work no thread
        took, run meanwhile on other threads (one of them may be what it waits for)."""
        link = self.link
        while True:
            with link.work_lock:
                if not self.ahead:
                    break
                message = self.ahead.popleft()
            link.queue_work(message)
        if link.work:
            self.add_helper()

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
        main thread, whose SIGINT does it); a task sent ahead that has not started is
        dropped (its DONE has no results: the rank answers it as cancelled)."""
        self.link.cancelled.add(message[1])
        with self.link.work_lock:
            for queued in self.ahead:
                if queued[1].task_id == message[1]:
                    self.ahead.remove(queued)
                    break
            else:
                queued = None
        if queued is not None:
            self._give_back(queued[2])
            self._answer(queued[1], [], None, 0.0)
            return
        ident = self.threads.get(message[1])
        if ident is not None and ident != threading.main_thread().ident:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                       ctypes.py_object(KeyboardInterrupt))

    def add_helper(self):
        """Work came while every thread is busy: a thread to run it."""
        with self.lock:
            if self.waiting:
                return                         # one waits, or is on its way to
            self.waiting += 1
        threading.Thread(target=self.serve, args=(True,), name="hpcray-worker-helper",
                         daemon=True).start()

    def serve(self, helper=False):
        """Take work and run it. A process that hosts actors keeps one thread waiting
        (reading the socket) while others run calls: calls of its other actors, or of a
        threaded one, start at once. A helper thread leaves when another one waits."""
        link = self.link
        lock = self.lock
        if not helper:
            with lock:
                self.waiting += 1
        while True:
            message = link.next_work() if helper else self.next_for_main()
            with lock:
                self.waiting -= 1
                spare = self.waiting
            kind = message[0]
            if kind == protocol.ACTOR_NEW:
                self.hosts_actors = True
            if self.hosts_actors and not spare:
                self.add_helper()
            if kind == protocol.RUN:
                self.run_task(message[1], message[2])
            elif kind == protocol.ACTOR_CALL:
                self.run_call(message[1], message[2])
            elif kind == protocol.ACTOR_NEW:
                self.new_actor(message[1], message[2])
            else:
                raise RuntimeError(f"a worker process got an unknown message {kind!r}")
            with lock:
                if helper and self.waiting:    # enough threads wait: this one leaves
                    return
                self.waiting += 1


def _missing(call, instance):
    if instance is None:
        return RuntimeError(f"the actor of {call.name} is not in this worker process")
    return AttributeError(f"actor {type(instance).__name__} has no method {call.func_id!r}")


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
