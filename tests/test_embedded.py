"""Embedded mode: ``python script.py`` calling ``hpcray.init()`` spawns the
workers with MPI spawn; shutdown/init cycles; clean exit without leftover
processes."""


def test_embedded_init_tasks_shutdown_reinit(run_job):
    res = run_job(
        """
        import os, time
        import psutil
        import hpcray as ray

        print("TOP-LEVEL-OF-SCRIPT", flush=True)   # must print once: workers never re-run the script

        @ray.remote
        def where(t):
            time.sleep(t)
            return ray.get_runtime_context().get_rank()

        @ray.remote
        def add(a, b):
            return a + b

        def python_children():
            out = []
            for p in psutil.Process().children(recursive=True):
                try:
                    if p.name().startswith("python") and p.status() != psutil.STATUS_ZOMBIE:
                        out.append(p.pid)
                except psutil.Error:
                    pass
            return out

        record("before", ray.is_initialized())

        @check
        def first_session():
            ray.init(num_cpus=2)
            ranks = sorted(set(ray.get([where.remote(0.3) for _ in range(8)])))
            return {"init": ray.is_initialized(), "ranks": ranks,
                    "driver_rank": ray.get_runtime_context().get_rank(),
                    "cpu": ray.cluster_resources().get("CPU"),
                    "dag": ray.get(add.remote(add.remote(1, 2), ray.put(4))),
                    "workers": len(python_children())}

        @check
        def double_init_raises():
            ray.init(num_cpus=2)

        @check
        def ignore_reinit():
            ray.init(num_cpus=2, ignore_reinit_error=True)
            return ray.get(add.remote(1, 1))

        @check
        def after_shutdown():
            ray.shutdown()
            deadline = time.time() + 10
            while python_children() and time.time() < deadline:
                time.sleep(0.1)
            return {"init": ray.is_initialized(), "children": python_children()}

        @check
        def second_session():
            ray.init(num_cpus=2)
            return {"init": ray.is_initialized(),
                    "ranks": sorted(set(ray.get([where.remote(0.3) for _ in range(8)]))),
                    "value": ray.get(add.remote(20, 22))}

        ray.shutdown()
        record("final", ray.is_initialized())
        """,
        embedded=True, timeout=90,
    )
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
    res = run_job(
        """
        import hpcray as ray

        @ray.remote
        def fib(n):
            if n < 2:
                return n
            return sum(ray.get([fib.remote(n - 1), fib.remote(n - 2)]))

        @ray.remote
        def one():
            return 1

        @check
        def default_init():
            ray.init()
            return [ray.is_initialized(), ray.get(one.remote()),
                    ray.cluster_resources().get("CPU", 0) >= 1]

        ray.shutdown()

        @check
        def fib_two_workers():
            ray.init(num_cpus=2)
            return ray.get(fib.remote(15))
        """,
        embedded=True, timeout=150,
    )
    assert res.value("default_init") == [True, 1, True]
    assert res.value("fib_two_workers") == 610
    res.assert_ok()
    assert res.leftover == [], res.describe()


def test_embedded_exit_without_shutdown(run_job):
    """Interpreter exit must shut the workers down (atexit)."""
    res = run_job(
        """
        import hpcray as ray
        ray.init(num_cpus=2)

        @ray.remote
        def f(x):
            return x * 3

        record("v", ray.get([f.remote(i) for i in range(4)]))
        """,
        embedded=True, timeout=60,
    )
    assert res.value("v") == [0, 3, 6, 9]
    res.assert_ok()
    assert res.leftover == [], res.describe()


def test_embedded_sys_exit_code(run_job):
    res = run_job(
        """
        import sys
        import hpcray as ray
        ray.init(num_cpus=2)

        @ray.remote
        def f():
            return 1
        ray.get(f.remote())
        sys.exit(3)
        """,
        embedded=True, timeout=60,
    )
    assert res.returncode == 3, res.describe()
    assert res.leftover == [], res.describe()


def test_embedded_uncaught_exception_while_task_sleeps(run_job):
    res = run_job(
        """
        import time
        import hpcray as ray
        ray.init(num_cpus=2)

        @ray.remote
        def sleeper():
            time.sleep(60)

        refs = [sleeper.remote() for _ in range(2)]
        time.sleep(1.0)
        raise RuntimeError("embedded-driver-crash")
        """,
        embedded=True, timeout=45,
    )
    assert res.returncode != 0, res.describe()
    assert "embedded-driver-crash" in res.stderr, res.describe()
    assert res.duration < 15, res.describe()
    assert res.leftover == [], res.describe()


def _shm():
    import os
    return {name for name in os.listdir("/dev/shm") if "mpich" in name or "hpcray" in name}


def test_embedded_leaves_no_shared_memory_segments(run_job):
    """Each spawn cycle's workers finish exiting before the driver goes on, so MPICH unlinks
    their segments (a driver that left first took the workers down mid-finalize)."""
    before = _shm()
    res = run_job(
        """
        import hpcray as ray
        for k in (2, 1, 2):
            ray.init(num_cpus=k)
            assert ray.get(ray.put(k)) == k
            ray.shutdown()
        ray.init(num_cpus=2)              # left to the exit handler
        record("done", True)
        """,
        embedded=True, timeout=90,
    )
    res.assert_ok()
    assert res.value("done") is True
    assert _shm() - before == set(), _shm() - before
