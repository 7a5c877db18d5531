"""pytest fixtures for the hpcray test-suite.

``run_job(job, n=2, args=(), timeout=60, env=None, embedded=False, name=None,
launcher="hpcray")``
runs the job file ``job`` -- a path relative to ``tests/jobs`` (``helpers.JOBS_DIR``),
e.g. ``"tasks/basics.py"``; an absolute path is taken as it is -- in place, as
``mpiexec -n n python -m hpcray tests/jobs/<job> *args`` -- or
``python tests/jobs/<job> *args`` when ``embedded=True`` -- with the test's tmp_path
as working directory (``<name>.stdout`` / ``<name>.stderr`` land there) and
``tests/jobs`` on the job's PYTHONPATH, and returns a ``helpers.JobResult``:
returncode / stdout / stderr / duration / leftover (processes of the job still alive
after it ended), files_seen / files_left (the job's own /dev/shm segments and spill
directories, told apart from other jobs' by ``helpers.JobTracker``), and ``.value(name)``
/ ``.error(name)`` for the ``RESULT`` lines printed by ``jobkit.check`` /
``jobkit.record`` (tests/jobs/jobkit.py).

On timeout every Python rank receives SIGUSR1 (faulthandler stack dump),
after 2 s the process tree is killed and the test fails showing the output.

``start_job(...)`` is the same but returns the running ``helpers.Job``
(call ``.wait(timeout)`` to get the JobResult).

Environment knobs:
  HPCRAY_TEST_TIMEOUT_SCALE  multiply every job timeout (slow machines), default 1.
"""
from __future__ import annotations

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import Job, JobResult  # noqa: E402

TIMEOUT_SCALE = float(os.environ.get("HPCRAY_TEST_TIMEOUT_SCALE", "1"))


def _check_tools():
    bindir = os.path.dirname(sys.executable)
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    if shutil.which("mpiexec", path=path) is None:
        pytest.skip("mpiexec not found next to sys.executable or on PATH")


@pytest.fixture
def start_job(tmp_path):
    jobs = []

    def _start(job, n: int = 2, args=(), env=None, embedded: bool = False,
               name: str | None = None, launcher: str = "hpcray") -> Job:
        if not embedded:
            _check_tools()
        started = Job(tmp_path, job, n=n, args=args, env=env, embedded=embedded,
                      name=name, launcher=launcher).start()
        jobs.append(started)
        return started

    yield _start
    # Whatever happened in the test, leave no process behind.
    for job in jobs:
        if job.proc is not None and job.proc.poll() is None:
            job.kill()
            try:
                job.proc.wait(timeout=10)
            except Exception:
                pass
        else:
            for p in job.all_procs():
                try:
                    p.kill()
                except Exception:
                    pass
        job.tracker.stop()


@pytest.fixture
def run_job(start_job):
    def _run(job, n: int = 2, args=(), timeout: float = 60, env=None,
             embedded: bool = False, name: str | None = None,
             launcher: str = "hpcray") -> JobResult:
        """``launcher``: ``"hpcray"`` (``mpiexec -n N python -m hpcray script.py``),
        ``"python"`` (``mpiexec -n N python script.py``: init() joins the job), ``"run"``
        (``python -m hpcray run -n N script.py``) or ``"srun"`` (a Slurm step)."""
        job = start_job(job, n=n, args=args, env=env, embedded=embedded, name=name,
                        launcher=launcher)
        return job.wait(timeout * TIMEOUT_SCALE)

    return _run
