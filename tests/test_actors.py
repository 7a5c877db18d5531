"""Actors: ordering per caller, handles through tasks and actors, names, kill, init and method
failures, threaded and async concurrency, resources, lifetimes, 1000 actors. Real MPI jobs."""
import pytest


def test_actors(run_job):
    res = run_job("actors/core.py", n=4, args=[3], timeout=240)   # 3 worker ranks
    res.assert_ok()
    assert res.value("ordered_per_caller") is True
    assert res.value("waits_for_argument_in_order") == ["slow", 0, 1, 2, 3, 4]
    assert res.value("state_kept") == 15
    assert res.value("method_failure_fails_that_call_only") == [["TaskError", True], 2]
    assert res.value("num_returns_on_methods") == [[3, -3], [3, -3]]
    assert "Counter.remote" in res.error("direct_instantiation_is_an_error")["msg"]
    assert res.error("unknown_method_is_an_error")["type"] == "AttributeError"
    assert res.value("init_failure") == [["ValueError", True, True]] * 2
    assert res.value("kill_fails_pending_and_later_calls") == ["died"] * 5
    assert res.error("kill_needs_a_handle")["type"] == "TypeError"
    elapsed, threads = res.value("threaded_actor_runs_calls_at_once")
    assert threads == 4 and elapsed < 1.5          # 4 x 0.5 s at once, not 2 s
    assert res.value("plain_actor_runs_one_call_at_a_time") >= 0.6
    released, waited, elapsed, naps = res.value("async_actor_interleaves_calls")
    assert (released, waited, naps) == ("set", "released", 50) and elapsed < 5  # not 15 s
    assert res.value("await_ref_inside_async_actor") == 10
    assert res.value("handles_through_tasks_and_actors") == [130, True, True]
    assert res.value("parameter_server") == 20000.0
    assert res.value("named_actors") == {
        "get_actor": 7, "duplicate": True, "get_if_exists": True, "namespaces": 1,
        "missing": True, "from_task": 8, "reused_after_kill": 42}
    assert res.value("cancel_queued_call") == [0.5, 0]
    assert res.value("spread_over_ranks") == [1, 2, 3]
    assert res.value("infeasible_actor") == [0, True, 5, "ActorDiedError"]
    assert "actor " in res.stderr and "requests GPU=1" in res.stderr
    assert res.value("resources_are_held") == [True, 5]
    during, result, after = res.value("released_when_handles_are_gone")
    assert during == ["ALIVE"] and result == 1 and after == ["DEAD"]
    assert res.value("detached_outlives_its_handles") == "here"
    total, ranks, final_states, _ = res.value("thousand_actors")
    assert total == sum(range(1000)) and ranks == 3 and final_states == ["DEAD"]


@pytest.mark.parametrize("embedded", [False, True])
def test_actors_end_with_their_session(run_job, embedded):
    res = run_job("actors/sessions.py", n=2, embedded=embedded, timeout=120,
                  env={"HPCRAY_NUM_WORKERS": "2"} if embedded else None)
    res.assert_ok()
    assert res.value("before") == "pong"
    assert res.error("old_handle")["type"] == "ActorDiedError"
    assert res.value("new_actor") == "pong"


def test_actors_on_a_single_rank(run_job):
    res = run_job("actors/single_rank.py", n=1, timeout=60)
    res.assert_ok()
    assert res.value("single_rank") == 100
    assert res.value("async_single_rank") == 20


def test_actors_die_with_their_owner(run_job):
    res = run_job("actors/owner_dies.py", n=2, timeout=90)
    res.assert_ok()
    assert res.value("plain_child") in ("gone", "ActorDiedError")
    assert res.value("detached_child") == "alive"


@pytest.mark.parametrize("env", [{}, {"HPCRAY_WORKER_PROCESSES": "0"}],
                         ids=["worker-processes", "in-rank"])
def test_cancelling_a_running_async_call(run_job, env):
    res = run_job("actors/async_cancel.py", n=2, env=env, timeout=90)
    res.assert_ok()
    assert res.value("cancelled") == ["TaskCancelledError", True]
    assert res.value("coroutine_saw") == ["CancelledError"]
    assert "Task was destroyed but it is pending" not in res.stderr
    assert "coroutine" not in res.stderr.lower() or "never awaited" not in res.stderr
