"""Ending the job cleanly when it is told to stop: Slurm's time limit, preemption, ``scancel``.

Slurm signals every task of the job (``SIGTERM``, or what ``--signal`` names; ``SIGUSR2`` is
handled too) and kills them ``KillWait`` seconds later (30 by default). hpcray lets the head
decide: worker ranks ignore these signals, and on the head (the rank running the script)

1. the signal interrupts the script with :class:`JobPreempted` (a ``SystemExit``, so
   ``except Exception`` in user code does not swallow it);
2. the shutdown hooks the script registered (:func:`register_shutdown_hook`, e.g. a call
   that makes an actor write a checkpoint) run, while every rank still serves;
3. work the script submitted and that is still running may finish, until the grace period
   (``HPCRAY_PREEMPT_GRACE``, 20 s) from the signal is over;
4. the job ends with a message saying why and status 128 + the signal number (143 for
   ``SIGTERM``). A hook still running when the grace period ends aborts the job instead:
   never a hang.
"""
import signal
import sys
import threading
import time

SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

_hooks = []
_received = None           # the signal number once one arrived
_received_at = None
_grace = 20.0              # HPCRAY_PREEMPT_GRACE of this process (install_on_head sets it)


class JobPreempted(SystemExit):
    """The job was told to stop (``SIGTERM``...): raised in the script on the head."""

    def __init__(self, signum):
        super().__init__(128 + signum)
        self.signum = signum


def register_shutdown_hook(function, *args, **kwargs):
    """Call ``function(*args, **kwargs)`` on the head when the job is told to stop (Slurm time
    limit, preemption, ``scancel --signal=TERM``), before the ranks leave. Hooks run in the
    order registered, may use hpcray (call actors, ``get``), and share the grace period.
    Returns ``function``, so it can be used as a decorator."""
    if not callable(function):
        raise TypeError(f"register_shutdown_hook needs a callable, got {function!r}")
    _hooks.append((function, args, kwargs))
    return function


def received():
    return _received


def install_on_head(config):
    """Handle the stop signals on this process (its main thread runs the script)."""
    global _grace
    _grace = config.preempt_grace
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        signal.signal(signum, _on_signal)


def ignore_on_worker():
    """Worker ranks leave when the head says so, not when Slurm signals them."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def stop_handling():
    """The script is over: a signal now changes nothing (the job is already ending)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def _on_signal(signum, frame):
    global _received, _received_at
    if _received is not None:
        return                                 # already stopping
    _received, _received_at = signum, time.monotonic()
    name = signal.Signals(signum).name
    sys.stderr.write(f"hpcray: received {name} (Slurm time limit, preemption or scancel): "
                     f"running {len(_hooks)} shutdown hook(s), then ending the job "
                     f"(grace {_grace:g} s)\n")
    sys.stderr.flush()
    _start_watchdog(signum)
    raise JobPreempted(signum)


def _start_watchdog(signum):
    def watch():
        time.sleep(_grace)
        sys.stderr.write(f"hpcray: shutdown after {signal.Signals(signum).name} did not finish "
                         f"within HPCRAY_PREEMPT_GRACE={_grace:g} s; aborting the job\n")
        sys.stderr.flush()
        from mpi4py import MPI
        MPI.COMM_WORLD.Abort(128 + signum)
    threading.Thread(target=watch, name="hpcray-preempt-watchdog", daemon=True).start()


def finish(rt):
    """After the script was stopped by a signal: hooks, then running work, within the grace
    period. Returns the exit status (128 + signal)."""
    signum = _received
    ran = run_hooks()
    deadline = _received_at + _grace - 1.0
    pending = _wait_for_work(rt, deadline)
    sys.stderr.write(f"hpcray: job stopped by {signal.Signals(signum).name}: {ran} shutdown "
                     f"hook(s) ran; {pending} task(s) still running were abandoned; "
                     f"exit status {128 + signum}\n")
    sys.stderr.flush()
    return 128 + signum


def run_hooks():
    ran = 0
    for function, args, kwargs in list(_hooks):
        try:
            function(*args, **kwargs)
            ran += 1
        except BaseException as error:         # one failing hook must not stop the others
            sys.stderr.write(f"hpcray: shutdown hook {getattr(function, '__name__', function)} "
                             f"raised {type(error).__name__}: {error}\n")
    return ran


def _wait_for_work(rt, deadline):
    """Wait (bounded) until the tasks and calls this rank submitted are done; return how many
    are not."""
    ownership = rt.ownership
    with rt.lock:
        still = ownership.unfinished()
    if still:
        rt.waiting.wait_until(lambda: not (still & ownership.unfinished()), deadline)
    with rt.lock:
        return len(ownership.unfinished())


def at_exit(rt_getter):
    """For ``init()`` without ``python -m hpcray``: the stop arrives as an uncaught
    JobPreempted; run the hooks at interpreter exit, before the workers are stopped."""
    def run():
        global _finished
        rt = rt_getter()
        if _received is not None and rt is not None and not _finished:
            _finished = True
            finish(rt)
    return run


_finished = False
