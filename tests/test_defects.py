"""Regression tests for six defects found by running Ray programs unchanged.

Each test runs a real job (the scripts are in ``tests/jobs/defects/``) in the ways a user
starts one: ``mpiexec -n N python -m hpcray script.py`` ("launcher"), ``mpiexec -n N python
script.py`` whose ``init()`` attaches to the job ("script"), and ``python script.py`` whose
``init()`` spawns workers (the embedded default, "embedded").

Other MPI jobs may run on the machine at the same time: checks for files left behind look
only at files of the job under test (its tag, or the MPICH segments its ranks mapped).
"""
import glob
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

MODES = ["launcher", "script", "embedded"]


@pytest.fixture
def run_script(run_job):
    """``run_script(name, mode, n=4, args=(), timeout=60)``: run ``tests/jobs/defects/<name>``
    in one of ``MODES``; returns the ``helpers.JobResult``."""
    count = [0]

    def _run(name, mode="launcher", n=4, args=(), timeout=60, env=None):
        count[0] += 1
        job = f"defects/{name}"
        stem = f"{Path(name).stem}-{mode}-{count[0]}"
        if mode == "embedded":
            return run_job(job, args=args, timeout=timeout, env=env, embedded=True, name=stem)
        assert mode in ("launcher", "script"), mode
        return run_job(job, n=n, args=args, timeout=timeout, env=env, name=stem,
                       launcher="hpcray" if mode == "launcher" else "python")
    return _run


def _left_behind(tag, segments):
    """Files of the job tagged ``tag`` still there: its MPICH segments (the names its ranks
    mapped), its hpcray files in /dev/shm, its spill directories."""
    left = [path for path in segments if os.path.exists(path)]
    left += glob.glob(f"/dev/shm/hpcray-{tag}-*")
    base = os.environ.get("HPCRAY_SPILL_DIR") or tempfile.gettempdir()
    left += glob.glob(os.path.join(base, f"hpcray-spill-{tag}-*"))
    return left


def _remove(paths):
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


# ------------------------------------------------------------------ 1. hang at the end
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pause", [0, 0.01])
def test_end_with_borrowing_tasks_does_not_hang(run_script, mode, pause):
    """Tasks that borrow refs still starting or running when the script ends: the job ends
    at once. It hung (a worker in await_borrows, the others in NodeStore.close)."""
    res = run_script("end_with_borrowing_tasks.py", mode, args=[pause], timeout=45)
    finished = time.time()
    res.assert_ok()
    assert finished - res.value("end") < 10, res.describe()
    assert res.leftover == [], res.describe()


# ------------------------------------------------------------------ 2. abort at the end
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("when", ["started", "at-once"])
def test_end_while_long_tasks_run_exits_zero_at_once(run_script, tmp_path, mode, when):
    """Ray exits 0 at once when the script ends while tasks run: they are abandoned. The job
    waited for them and ended by MPI_Abort(1) after HPCRAY_SHUTDOWN_GRACE."""
    marks = tmp_path / f"marks-{mode}-{when}"
    marks.mkdir()
    start = time.time()
    res = run_script("end_while_tasks_run.py", mode, args=[marks, when], timeout=60)
    exited = start + res.duration
    tag, segments = res.value("tag"), res.value("segments")
    left = _left_behind(tag, segments)
    _remove(left)
    assert res.returncode == 0, res.describe()
    assert "aborting" not in res.stderr and "MPI_Abort" not in res.stderr, res.describe()
    if when == "started":
        assert res.value("started") >= 2, res.describe()
    # promptly: well under the 5 s grace (a task takes 10 s), measured from the script's end
    assert exited - res.value("end") < 3.5, res.describe()
    assert not [m for m in os.listdir(marks) if m.startswith("finished")], res.describe()
    assert res.leftover == [], res.describe()
    assert left == [], f"left behind: {left}\n" + res.describe()


# ------------------------------------------------------------------ 3. a task never runs
@pytest.mark.parametrize("mode", ["launcher", "embedded"])
def test_unwaited_tasks_run(run_script, tmp_path, mode):
    """Tasks nobody waits for run, whatever their arguments (a put ref kept or dropped, a
    plain value), while the script goes on."""
    marks = tmp_path / f"marks-{mode}"
    marks.mkdir()
    res = run_script("unwaited_tasks.py", mode, args=[marks, "wait"], timeout=60)
    res.assert_ok()
    assert res.value("ran") == ["f-put", "f-put-dropped", "g-plain"]


@pytest.mark.parametrize("mode", ["launcher", "embedded"])
def test_tasks_cut_by_the_end_of_the_job_are_reported(run_script, tmp_path, mode):
    """The script ends right after submitting. A task may then not run (the job ended first,
    as in Ray), but never silently: each one ran or is counted in the job's closing notice.
    The task with a put argument never ran and nothing said so (the other one did run, after
    the end of the script)."""
    marks = tmp_path / f"marks-{mode}"
    marks.mkdir()
    res = run_script("unwaited_tasks.py", mode, n=2, args=[marks, "end"], timeout=60)
    res.assert_ok()
    notice = re.search(r"the job ends with (\d+) task\(s\)", res.stderr)
    reported = int(notice.group(1)) if notice else 0
    ran = os.listdir(marks)
    assert len(ran) + reported >= 3, f"ran {ran}, reported {reported}\n" + res.describe()


# ------------------------------------------------------------------ 4. a bad ref
def test_object_ref_from_bytes_that_name_no_object(run_script):
    res = run_script("bad_object_ref.py", "launcher", n=3, timeout=90)
    res.assert_ok()
    for name in ("get", "inside_a_put", "future"):
        error = res.error(name)
        assert error["type"] == "ObjectLostError", error
        assert "no rank of this job" in error["msg"], error
    assert res.value("wait") == [1, 0]         # ready, as any lost object: get raises
    for name in ("as_argument", "nested_in_argument"):
        error = res.error(name)
        assert "ObjectLostError" in error["mro"], error
        assert "no rank of this job" in error["msg"], error
    short = res.error("short_bytes")
    assert short["type"] == "ValueError" and "28 bytes" in short["msg"], short
    assert res.error("not_bytes")["type"] == "TypeError"
    assert res.value("round_trip") == [True, 28, "kept"]
    assert res.value("repr") is True
    assert res.value("job_goes_on") == list(range(8))


# ------------------------------------------------------------------ 5. sys.exit in a task
def test_sys_exit_in_tasks_and_actor_methods(run_script):
    res = run_script("sys_exit_in_tasks.py", "launcher", n=3, timeout=90)
    assert res.value("reached_end") is True    # before: the script ended silently, status 0
    res.assert_ok()
    for name, code in (("task", "3"), ("task_no_code", "None"), ("task_retried", "4")):
        error = res.error(name)
        assert error["type"] == "WorkerCrashedError", error
        assert "SystemExit" not in error["mro"] and "Exception" in error["mro"], error
        assert f"sys.exit({code})" in error["msg"], error
    assert res.value("attempts") == 3          # max_retries=2, as Ray retries a dead worker
    assert res.value("task_caught_as_exception") == "WorkerCrashedError"
    assert res.value("alive") == "pong"
    for name in ("actor_method", "actor_queued_call", "actor_later_call", "exit_actor",
                 "async_actor_method", "exit_in_init"):
        error = res.error(name)
        assert error["type"] == "ActorDiedError", (name, error)
        assert "ActorError" in error["mro"] and "SystemExit" not in error["mro"], error
    assert "sys.exit(3)" in res.error("actor_method")["msg"]
    assert "sys.exit(3)" in res.error("actor_later_call")["msg"]
    assert "sys.exit(5)" in res.error("async_actor_method")["msg"]
    assert "exit_actor()" in res.error("exit_actor")["msg"]
    assert "sys.exit(2)" in res.error("exit_in_init")["msg"]
    assert res.value("actor_caught_as_ray_actor_error") == "ActorDiedError"


# ------------------------------------------------------------------ 6. leftovers
@pytest.mark.parametrize("how", ["exit", "kill"])
def test_crashed_worker_leaves_nothing_behind(run_script, how):
    """A task that kills its worker process fails alone (WorkerCrashedError with the exit
    status, after its retries); the job goes on and ends leaving nothing behind: neither
    MPICH's segment of the node nor the spill directory."""
    res = run_script("worker_crash.py", "launcher", n=3, args=[how], timeout=60)
    tag, segments = res.value("tag"), res.value("segments")
    left = _left_behind(tag, segments)
    _remove(left)                              # ours: never leave them to the next test
    assert res.returncode == 0, res.describe()
    exit_code, attempts, text = res.value("crashed")
    assert exit_code == (3 if how == "exit" else -9), res.describe()
    assert attempts == 2, res.describe()       # max_retries=1: two attempts
    assert ("status 3" if how == "exit" else "SIGKILL") in text, text
    assert res.value("after") is True and res.value("survived") is True, res.describe()
    assert segments, res.describe()            # the check sees the job's segment
    assert left == [], f"left behind: {left}\n" + res.describe()
    assert res.leftover == [], res.describe()
