"""Core task API: remote/get/put/wait/cancel, ObjectRef behaviour, DAGs,
nested refs, futures and await, runtime context, init/shutdown, resources,
nested (recursive) tasks."""
import pytest

from helpers import run_on_ray


@pytest.mark.parametrize("n", [1, 2, 4])
def test_basics(run_job, n):
    res = run_job("tasks/basics.py", n=n, args=[n], timeout=120)
    assert res.value("simple") == 3
    assert res.value("kwargs") == 6
    assert res.value("kwarg_ref_resolved") == 42
    assert res.value("get_list") == [2 * i for i in range(20)]
    assert res.value("get_empty_list") == []
    assert res.value("put_get") == {"a": [1, 2, 3]}
    assert res.value("put_ref_as_arg") == "from-put"
    assert res.value("main_module_objects") == ["Point", 2, 3, True, 6, 1001, 8]
    assert res.value("put_copies_value") == [1]
    assert res.value("args_are_copies") == [3, [1, 2]]
    assert res.value("numpy_roundtrip") == [True, [1_000_000], "float64", True,
                                            float(sum(range(1_000_000)))]
    assert res.value("num_returns_decorator") == [7, 70]
    assert res.value("num_returns_options") == [3, [1, 2, 3]]
    assert res.value("decorator_options_accepted") == -5
    assert res.value("options_accepted") == 5

    err = res.error("direct_call")
    assert "TypeError" in err["mro"], err
    assert ".remote(" in err["msg"], err   # e.g. "use f.remote()" or "f.remote(...)"
    err = res.error("get_non_ref")
    assert "TypeError" in err["mro"], err

    assert res.value("get_timeout") == {"timeout_error": True, "is_TimeoutError": True,
                                        "fast": True, "later": "late"}
    assert res.value("objectref_hash_eq") == [2, "a", "b", True, True, "ObjectRef", True]
    assert res.value("objectref_pickle") == [True, True, 42, "put-value"]
    assert res.value("dag") == [16, 116]
    assert res.value("dag_wide") == sum(range(8))
    assert res.value("nested_refs_stay_refs") == [
        {"type": "list", "inner": ["ObjectRef"] * 4}, 0 + 1 + 2 + 3]
    assert res.value("top_level_ref_resolved") == {"type": "list", "inner": ["int", "int"]}
    assert res.value("future_result") == [True, 4]
    assert res.value("await_ref") == [7, [2, "z"]]
    assert res.value("wait_order_and_split") == [True, True, True, True, "slow"]
    err = res.error("wait_too_many")
    assert "ValueError" in err["mro"], err
    assert res.value("many_small_tasks") == sum(range(1, 301))

    ctx = res.value("runtime_context")
    assert ctx["driver_task_id"] is None
    assert ctx["driver_rank"] == 0
    assert ctx["driver_node_is_str"] is True
    assert ctx["task_ids_hex"] is True
    assert ctx["task_ids_distinct"] is True
    assert ctx["task_node_is_str"] is True
    if n == 1:
        assert ctx["task_ranks"] == [0], ctx
    else:
        assert ctx["task_ranks"] and all(1 <= r < n for r in ctx["task_ranks"]), ctx

    cr = res.value("cluster_resources")
    assert cr["is_dict"] is True and cr["CPU"] is not None and cr["CPU"] >= 1, cr
    assert res.value("still_works_at_end") == 101
    res.assert_ok()


def test_tasks_spread_over_workers(run_job):
    res = run_job("tasks/spread.py", n=4, timeout=60)
    res.assert_ok()
    assert res.value("ranks") == [1, 2, 3]


@pytest.mark.parametrize("n", [1, 2])
def test_cancel_queued_task(run_job, tmp_path, n):
    marker = tmp_path / f"victim-ran-{n}"
    res = run_job("tasks/cancel_queued.py", n=n, args=[str(marker)], timeout=90)
    err = res.error("get_cancelled")
    assert "TaskCancelledError" in err["mro"], err
    assert res.value("wait_reports_cancelled_ready") == 1
    assert res.value("victim_ran") is False
    assert res.value("cancel_finished_is_noop") == "q"
    assert res.value("after") == "still-works"
    res.assert_ok()


def test_init_attach_reinit_shutdown(run_job):
    res = run_job("tasks/init_reinit_shutdown.py", n=2, timeout=60)
    assert res.value("first_init") is True
    err = res.error("second_init_raises")
    assert "RuntimeError" in err["mro"], err
    assert res.value("ignore_reinit") == 2
    assert res.value("shutdown_then_init") == [False, True, 3, True]
    assert res.value("twice_more") == [1, 2, 3, 4, 5]
    res.assert_ok()


@pytest.mark.parametrize("n", [1, 2])
def test_infeasible_requests_wait_with_a_warning(run_job, n):
    res = run_job("tasks/infeasible_resources.py", n=n, timeout=90)
    for name in ("cpus", "custom", "custom_decorator"):
        assert res.value(name) == {"where": "pending, then cancelled"}, name
    assert res.value("after") == "ran"
    res.assert_ok()
    for needle in ("task __main__.f requests CPU=1000", "unobtainium=1", "unobtainium=2"):
        assert needle in res.stderr, res.describe()
    assert res.stderr.count("hpcray: warning:") == 3      # once per request, not per task


def test_init_declares_job_totals(run_job):
    # 3 executing ranks; init(num_cpus=5, num_gpus=1): CPUs 2, 2, 1 and the GPU on rank 1
    res = run_job("tasks/declared_totals.py", n=4, timeout=90)
    res.assert_ok()
    assert res.value("totals") == {"CPU": 5.0, "GPU": 1.0}
    assert res.value("gpu_actor_rank") == 1
    assert res.value("two_cpu_ranks") == [1, 2]


@pytest.mark.parametrize("n", [1, 3])
def test_nested_fib(run_job, n):
    res = run_job("tasks/fib.py", n=n, args=[15], timeout=150)
    assert res.value("fib10") == 55
    assert res.value("fib15") == 610
    res.assert_ok()


def test_api_surface_without_init(run_job):
    """``import hpcray as ray`` exposes Ray's core names; nothing starts on import."""
    res = run_job("tasks/api_surface.py", embedded=True, timeout=60)
    assert res.value("missing") == []
    assert res.value("missing_exceptions") == []
    assert res.value("subclassing") == [True, True, True]
    assert res.value("initialized_after_import") is False
    err = res.error("direct_call_without_init")
    assert "TypeError" in err["mro"] and ".remote(" in err["msg"], err
    res.assert_ok()
    assert res.leftover == [], res.describe()


@pytest.mark.parametrize("n", [1, 2])
def test_nested_get_wakes_promptly(run_job, n):
    """A task blocked in ``get`` on a child task must wake when the child's
    result arrives, not on some polling timer: ten nested round trips and a
    depth-8 chain take milliseconds each, so generous bounds (~50x) hold even
    on a loaded 2-core machine."""
    res = run_job("tasks/nested_get_wakes.py", n=n, timeout=90)
    ok, took = res.value("ten_nested")
    assert ok is True
    assert took < 3.0, f"10 sequential nested gets took {took:.2f}s\n" + res.describe()
    v, took = res.value("chain8")
    assert v == 8
    assert took < 3.0, f"a depth-8 chain of nested gets took {took:.2f}s\n" + res.describe()
    res.assert_ok()


@pytest.mark.parametrize("n", [1, 3])
def test_api_from_many_threads(run_job, n):
    """Driver threads submit, get and put at once (an executor of hpcray calls)."""
    res = run_job("tasks/many_threads.py", n=n, timeout=120)
    res.assert_ok()
    assert res.value("ok") is True


BEHAVIOURS = {
    "out_of_band": True,
    "free": "ObjectFreedError",
    "ref_from_binary": [5, True],
    "from_hex_and_binary": [5, 5],
    "task_context": [{"CPU": 0.5}, [], False, True, None],
    "ray_ready": [True, True],
    "actor_assigned": {"CPU": 1.0},
    # numpy arrays arrive read-only, small or large: arguments, nested ones, gets, results
    "read_only": [[False, False], [False, False], False, False, False, False],
    # an exception that cannot be pickled: Ray's error, its message and traceback as text
    "unpicklable_exception": [True, False, True, True, True],
}


@pytest.mark.parametrize("env", [{}, {"HPCRAY_WORKER_PROCESSES": "0"}],
                         ids=["worker-processes", "in-rank"])
def test_rays_behaviours(run_job, env):
    res = run_job("tasks/ray_behaviours.py", n=2, env=env, timeout=90)
    res.assert_ok()
    for name, value in BEHAVIOURS.items():
        assert res.value(name) == value, (name, res.describe())


def test_rays_behaviours_on_ray_record_the_same():
    recorded = run_on_ray("tasks/ray_behaviours.py")
    # Ray 2.60 dropped internal_api.free and ObjectRef.from_hex/from_binary: the rest agrees
    assert recorded == {name: value for name, value in BEHAVIOURS.items() if name in recorded}
    assert set(BEHAVIOURS) - set(recorded) <= {"free", "from_hex_and_binary"}


@pytest.mark.parametrize("env", [{}, {"HPCRAY_WORKER_PROCESSES": "0"}],
                         ids=["worker-processes", "in-rank"])
def test_runtime_env(run_job, tmp_path, env):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("VALUE = 'from py_modules'\n")
    (tmp_path / "data.txt").write_text("hello from working_dir\n")
    res = run_job("tasks/runtime_env.py", n=2, env=env, args=[str(tmp_path)], timeout=90)
    res.assert_ok()
    # env_vars for that task only, over the job's (init(runtime_env=)); never the driver's
    assert res.value("task_env") == ["yes", "task", "job"]
    assert res.value("other_task") == [None, "job", "job"]
    assert res.value("driver") is None
    assert res.value("working_dir_and_py_modules") == ["hello from working_dir",
                                                       "from py_modules"]
    assert res.value("actor_env") == ["actor", "job", None]
    unsupported = res.error("unsupported_field")
    assert unsupported["type"] == "ValueError" and "'pip'" in unsupported["msg"]
    assert "Supported: env_vars" in unsupported["msg"]
    assert "not a local path" in res.error("remote_uri")["msg"]
    gone = res.error("working_dir_gone_where_it_runs")
    assert "RuntimeEnvSetupError" in gone["mro"] and "does not exist" in gone["msg"]
