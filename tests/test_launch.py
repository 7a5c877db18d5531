"""Launching: ``mpiexec -n N python -m hpcray script.py args`` -- argv, exit
status, uncaught exceptions on rank 0, faulthandler on SIGUSR1, idle ranks
not spinning, many ranks."""
import os
import time

import psutil
import pytest


@pytest.mark.parametrize("n", [1, 2, 4])
def test_argv_main_and_exit_zero(run_job, n):
    res = run_job(
        "launch/argv_main.py",
        n=n, args=["a", "--flag", "two words", "-n", "7"], timeout=60,
    )
    res.assert_ok()
    argv = res.value("argv")
    assert os.path.basename(argv[0]) == res.script.name
    assert argv[1:] == ["a", "--flag", "two words", "-n", "7"]
    assert res.value("name") == "__main__"
    assert res.value("cwd_script_exists") is True
    assert res.value("task") == 42
    # the script runs once (on rank 0 only), not once per rank
    assert res.stdout.count("END-OF-SCRIPT") == 1, res.describe()
    assert res.leftover == [], res.describe()


@pytest.mark.parametrize("n", [1, 2])
def test_sys_exit_code_propagates(run_job, n):
    res = run_job("launch/sys_exit_code.py", n=n, timeout=60)
    assert res.returncode == 3, res.describe()
    assert "BEFORE-EXIT" in res.stdout
    assert res.leftover == [], res.describe()


def test_sys_exit_without_tasks(run_job):
    res = run_job("launch/exit_five.py", n=2, timeout=60)
    assert res.returncode == 5, res.describe()


@pytest.mark.parametrize("n", [1, 2])
def test_uncaught_exception_on_rank0(run_job, n):
    res = run_job("launch/uncaught_exception.py", n=n, timeout=60)
    assert res.returncode != 0, res.describe()
    assert "Traceback" in res.stderr, res.describe()
    assert "kaboom-on-rank0" in res.stderr, res.describe()
    assert "deep_helper_xyz" in res.stderr, res.describe()
    assert res.leftover == [], res.describe()


@pytest.mark.parametrize("n", [1, 2, 4])
def test_uncaught_exception_while_task_sleeps_exits_fast(run_job, n):
    res = run_job("launch/exception_while_task_sleeps.py", n=n, timeout=45)
    assert res.returncode != 0, res.describe()
    assert "driver-failed-while-tasks-run" in res.stderr, res.describe()
    assert res.duration < 15, f"job took {res.duration:.1f}s to die\n" + res.describe()
    assert res.leftover == [], res.describe()


def test_timeout_harness_dumps_every_rank_stack(run_job):
    """A hanging job: run_job must SIGUSR1 every rank (hpcray registers
    faulthandler on it) and fail with the stack dumps -- the worker's dump
    names the task function, the driver's shows the script."""
    with pytest.raises(pytest.fail.Exception) as info:
        run_job(
            "launch/hanging_task.py",
            n=2, timeout=8,
        )
    text = str(info.value)
    assert "timed out" in text
    # one "(most recent call first)" header per thread, at least one per rank
    assert text.count("most recent call first") >= 2, text
    assert "sleeper_in_worker_task" in text, text


def test_idle_ranks_do_not_spin(start_job, tmp_path):
    marker = tmp_path / "sleeping.marker"
    job = start_job("launch/idle_ranks.py", n=4, args=[str(marker)])
    deadline = time.monotonic() + 45
    while not marker.exists():
        if job.proc.poll() is not None or time.monotonic() > deadline:
            res = job.wait(5)
            pytest.fail("job ended or hung before the idle phase\n" + res.describe())
        time.sleep(0.05)
    procs = job.python_procs()
    assert len(procs) >= 4, [p.cmdline() for p in procs]
    before = {}
    for p in procs:
        try:
            t = p.cpu_times()
            before[p.pid] = (p, t.user + t.system)
        except psutil.Error:
            pass
    t0 = time.monotonic()
    time.sleep(2.0)
    wall = time.monotonic() - t0
    usage = {}
    for pid, (p, c0) in before.items():
        try:
            t = p.cpu_times()
            usage[pid] = ((t.user + t.system) - c0) / wall
        except psutil.Error:
            pass
    res = job.wait(60)
    busy = {pid: round(u, 3) for pid, u in usage.items() if u > 0.15}
    assert not busy, (f"ranks burn CPU while idle (fraction of a core over {wall:.1f}s): "
                      f"{busy}; all: { {k: round(v, 3) for k, v in usage.items()} }\n"
                      + res.describe())
    res.assert_ok()
    assert "DONE" in res.stdout


def test_sixteen_ranks_hundred_sleep_tasks(run_job):
    res = run_job("launch/sixteen_ranks.py", n=16, timeout=90)
    res.assert_ok()
    assert res.value("ok") is True
    ranks = res.value("ranks")
    assert all(1 <= r <= 15 for r in ranks), ranks
