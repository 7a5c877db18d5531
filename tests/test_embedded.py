"""Embedded mode: ``python script.py`` calling ``hpcray.init()`` spawns the
workers with MPI spawn; shutdown/init cycles; clean exit without leftover
processes."""


def test_embedded_init_tasks_shutdown_reinit(run_job):
    res = run_job("embedded/init_shutdown_reinit.py", embedded=True, timeout=90)
    assert res.value("before") is False
    s1 = res.value("first_session")
    assert s1["init"] is True
    assert s1["ranks"] == [1, 2], s1
    assert s1["driver_rank"] == 0
    assert s1["cpu"] is not None and s1["cpu"] >= 2, s1
    assert s1["dag"] == 7
    assert s1["workers"] >= 2, s1
    err = res.error("double_init_raises")
    assert "RuntimeError" in err["mro"], err
    assert res.value("ignore_reinit") == 2
    assert res.value("after_shutdown") == {"init": False, "children": []}
    s2 = res.value("second_session")
    assert s2 == {"init": True, "ranks": [1, 2], "value": 42}, s2
    assert res.value("final") is False
    res.assert_ok()
    assert res.stdout.count("TOP-LEVEL-OF-SCRIPT") == 1, res.describe()
    assert res.leftover == [], res.describe()


def test_embedded_default_init_and_fib(run_job):
    res = run_job("embedded/default_init_and_fib.py", embedded=True, timeout=150)
    assert res.value("default_init") == [True, 1, True]
    assert res.value("fib_two_workers") == 610
    res.assert_ok()
    assert res.leftover == [], res.describe()


def test_embedded_exit_without_shutdown(run_job):
    """Interpreter exit must shut the workers down (atexit)."""
    res = run_job("embedded/exit_without_shutdown.py", embedded=True, timeout=60)
    assert res.value("v") == [0, 3, 6, 9]
    res.assert_ok()
    assert res.leftover == [], res.describe()


def test_embedded_sys_exit_code(run_job):
    res = run_job("embedded/exit_code.py", embedded=True, timeout=60)
    assert res.returncode == 3, res.describe()
    assert res.leftover == [], res.describe()


def test_embedded_uncaught_exception_while_task_sleeps(run_job):
    res = run_job("embedded/driver_crash.py", embedded=True, timeout=45)
    assert res.returncode != 0, res.describe()
    assert "embedded-driver-crash" in res.stderr, res.describe()
    assert res.duration < 15, res.describe()
    assert res.leftover == [], res.describe()


def test_embedded_leaves_no_shared_memory_segments(run_job):
    """Each spawn cycle's workers finish exiting before the driver goes on, so MPICH unlinks
    their segments (a driver that left first took the workers down mid-finalize). Only the
    job's own segments count (helpers.JobTracker), not those of other jobs on the machine."""
    res = run_job("embedded/no_shm_segments.py", embedded=True, timeout=90)
    res.assert_ok()
    assert res.value("done") is True
    assert res.files_left == [], res.describe()
    assert any(name.startswith("mpich_shm_") for name in res.files_seen), res.describe()
