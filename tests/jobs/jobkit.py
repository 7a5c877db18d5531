"""What every test job script imports: ``check``, ``record``, ``settle`` and ``runtime``.

The tests under ``tests/`` run the scripts of this folder as real MPI jobs
(``mpiexec -n N python -m hpcray tests/jobs/<module>/<script>.py args...``, or
``python <script>.py`` for the embedded ones) through the ``run_job`` / ``start_job``
fixtures, which put this folder on the job's ``PYTHONPATH``: every rank can import
``jobkit`` (functions defined in a script travel to the workers by value and may name
what they imported from here; the workers import this module to run them).

A script reports by printing ``RESULT {json}`` lines, one per check, which
``helpers.JobResult.value(name)`` / ``.error(name)`` read back in the test::

    from jobkit import check, record

    record("answer", 42)          # RESULT {"value": 42, "name": "answer"}

    @check                        # runs at once; records the return value or the exception
    def division():
        return 1 / 0              # RESULT {"error": {"type": "ZeroDivisionError", ...}, ...}

``runtime()`` is the one place that reaches into hpcray's internals to find the
process's runtime object: scripts that inspect internal state (``runtime().store``,
``runtime().ownership.objects``...) go through it, so that a restructured runtime changes only this
lookup.
"""
import json
import time
import traceback

__all__ = ["check", "record", "settle", "runtime", "on_rank", "rank_pid", "count"]


def _emit(name, **payload):
    payload["name"] = name
    print("RESULT " + json.dumps(payload, default=repr), flush=True)


def record(name, value):
    """Record a plain value under ``name`` (one ``RESULT`` line; non-JSON values as repr)."""
    _emit(name, value=value)


def _describe(error):
    cause = error.__cause__ if error.__cause__ is not None else error.__context__
    return {
        "type": type(error).__name__,
        "mro": [c.__name__ for c in type(error).__mro__],
        "msg": str(error),
        "repr": repr(error),
        "cause": None if cause is None else str(cause),
        "cause_type": None if cause is None else type(cause).__name__,
        "tb": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    }


def check(fn_or_name):
    """Decorator: run the function right away; record its return value, or the exception it
    raised (type, mro names, str, cause, traceback) under the function's name (or the name
    given: ``@check("other_name")``). SystemExit and KeyboardInterrupt propagate."""
    def _run(fn, name):
        try:
            value = fn()
        except Exception as error:
            _emit(name, error=_describe(error))
        else:
            _emit(name, value=value)
        return fn
    if callable(fn_or_name):
        return _run(fn_or_name, fn_or_name.__name__)
    return lambda fn: _run(fn, fn_or_name)


def runtime():
    """This process's hpcray runtime object (None before init / after shutdown).

    The only place the job scripts look the runtime up: its internals move, this lookup
    follows them."""
    from hpcray.core import current
    return current.runtime_or_none()


def on_rank(fn):
    """``fn(rt)`` with the runtime of the rank this code runs on: called here on a rank, and
    on the rank (by its worker process's request) inside a task or actor, where user code
    runs in a worker process and its rank's internals are elsewhere."""
    rt = runtime()
    if getattr(rt, "in_worker_process", False):
        return rt.on_rank(fn)
    return fn(rt)


def rank_pid():
    """The process id of the rank this code runs on (not of a task's worker process)."""
    rt = runtime()
    return rt.job.pids[rt.job.rank]


def settle(rounds=60):
    """Let the runtime take in what is in flight (frees, unpins) for about rounds x 10 ms."""
    rt = runtime()
    for _ in range(rounds):
        with rt.lock:
            rt.progress.turn()
            rt.progress.flush()
        time.sleep(0.01)


def count(directory, name):
    """Count one more ``name`` in ``directory`` (a line each, so that it survives the
    process: a task's attempts, an actor's builds); return how many so far."""
    import os
    path = os.path.join(directory, name)
    with open(path, "a") as file:
        file.write("x\n")
    with open(path) as file:
        return len(file.read().split())
