"""hpcray.util: ActorPool, Queue, multiprocessing.Pool and Executor, each in a real MPI job
and each held against its Ray / standard-library counterpart (ActorPool: Ray's documented
semantics; Queue: queue.Queue; Pool: multiprocessing.pool.ThreadPool, the same interface
without forking an MPI rank; Executor: concurrent.futures.ThreadPoolExecutor)."""
import pytest


def test_actor_pool(run_job):
    res = run_job("util/actor_pool.py", n=4, timeout=180)   # one worker rank per actor
    res.assert_ok()
    assert res.value("imports") == [True, True]
    assert res.value("map_ordered") == [2 * v for v in range(40)]
    assert res.value("map_is_a_generator") == [True, [2, 4, 6]]
    assert res.value("map_unordered_complete") == [40, [2 * v for v in range(40)]]
    fast_first = res.value("map_unordered_fast_first")
    assert sorted(fast_first) == [0.01, 0.01, 0.01, 1.0] and fast_first[-1] == 1.0
    assert res.value("map_uses_every_actor") == 3
    assert res.value("submit_then_get_next") == [2 * v for v in range(7)]
    assert res.value("map_drops_earlier_pending") == [2, 4]
    assert res.value("pending_submits_wait_for_an_actor") == [False, True, 0, 2, 4, 6, False,
                                                               True]
    t = res.value("get_next_timeout")
    assert t["raised"][0] == "TimeoutError" and "Timed out" in t["raised"][1]
    assert 0.09 <= t["waited"] < 0.55
    assert t["still_next"] is True and t["value"] == 0.6 and t["after"] is False
    t = res.value("get_next_ignore_if_timedout")
    assert "ignored" in t["msg"] and t["next"] == 0.05 and t["has_next"] is False
    t = res.value("get_next_unordered_timeout")
    assert t["raised"] == "TimeoutError" and 0.09 <= t["waited"] < 0.45
    assert t["value"] == 0.5 and t["after"] is False
    assert res.value("get_next_unordered_ignore_if_timedout") == {
        "raised": "TimeoutError", "has_next": False, "has_free": True}
    assert res.value("get_next_after_unordered_raises") == [0.01, "ValueError", 0.4]
    assert res.value("nothing_pending") == [False, "StopIteration", "StopIteration"]
    assert res.value("free_pop_push") == [True, True, True, None, False, True, "dup idle",
                                          "dup busy", 42]
    assert res.value("push_takes_a_pending_submit") == [0.02, 0.5]
    assert res.value("errors_propagate") == [0, 2, ["ValueError", ["bad 2"]], [], True, 6]
    assert res.value("fn_must_return_a_ref") == [True, False]


def test_queue(run_job):
    res = run_job("util/queues.py", n=3, timeout=180)
    res.assert_ok()
    same = res.value("same_as_stdlib")
    assert same["hpcray"] == same["stdlib"]
    assert same["stdlib"][3:8] == [["ok", None], ["ok", None], ["Full", True], ["Full", True],
                                   ["ValueError"]]
    assert res.value("fifo") == [200, list(range(200)), True]
    assert res.value("unbounded_is_never_full") == [False, 1000]
    t = res.value("get_timeout_waits")
    assert t["raised"] == "Empty" and 0.95 <= t["waited"] < 5
    assert t["driver_cpu"] < 0.5 * t["waited"]          # it sleeps, it does not poll hot
    t = res.value("put_timeout_waits")
    assert t["raised"] == "Full" and 0.45 <= t["waited"] < 5
    assert t["items"] == [1] and t["size"] == 0
    t = res.value("get_with_timeout_returns_when_an_item_arrives")
    assert t["value"] == "late" and t["produced"] == 1 and 0.25 <= t["waited"] < 10
    assert res.value("producer_task_consumer_actor") == [60, list(range(60)), 0]
    produced, count, by_producer = res.value("two_producers_async_consumer")
    assert produced == [20, 20] and count == 40
    assert by_producer == [list(range(20)), list(range(20))]   # each producer's order kept
    assert res.value("driver_consumes_what_tasks_produce") == [40, True]
    assert res.value("picklable") == ["through the copy", "to the task"]
    assert res.value("batches") == [
        ["ok", None], ["Full", True], 3, ["Empty", True], ["ok", [1, 2]], ["ok", []],
        ["TypeError"], ["TypeError"], ["ValueError"], 3]
    assert res.value("async_methods") == [
        "x", ["Empty", True], ["Empty", True], True, ["Full", True], ["Full", True],
        "cancelled", 1, 1]                      # the cancelled put(3) still went in
    assert res.value("shutdown") == [True, "ActorDiedError", "RuntimeError", True]


def same_as_stdlib(res):
    """The stdlib's outcomes, after checking hpcray's were the same in every case."""
    same = res.value("same_as_stdlib")
    differ = {k: (same["hpcray"][k], same["stdlib"][k]) for k, eq in same["equal"].items()
              if not eq}
    assert not differ, differ
    return same["stdlib"]


def test_pool(run_job):
    res = run_job("util/pool.py", n=3, timeout=240)
    res.assert_ok()
    stdlib = same_as_stdlib(res)
    assert stdlib["map"] == [x * x for x in range(1000)]
    assert stdlib["apply_async"] == [49, [49], True, True]
    assert stdlib["map_async_empty"] == [[], [], True]
    assert stdlib["callback_submits"] == 16
    assert stdlib["apply_async_error"] == [True, False, ["ValueError", ["bad 13"]], [True]]
    assert stdlib["not_ready"] == ["ValueError", ["multiprocessing.TimeoutError"], False, [0.6],
                                   True]
    assert stdlib["imap_timeout"] == [["multiprocessing.TimeoutError"], 0.6,
                                      ["StopIteration", []]]
    assert stdlib["imap_error"] == [["ok", 12], ["ValueError", ["bad 13"]], ["ok", 14],
                                    ["StopIteration", []]]
    assert stdlib["after_with"][0] == "ValueError"
    assert stdlib["join_running"][0] == "ValueError"
    big, distinct, none_in, default_distinct, cpus = res.value("chunking")
    assert big == 10_000 and distinct == 16 and none_in is False   # 4 x processes chunks
    assert default_distinct == 4 * int(cpus)
    assert res.value("errors_keep_their_type") == [True, ["bad 13"], True]
    assert res.value("runs_on_worker_ranks") == [1, 2]
    equal, ours, driver_g = res.value("initializer_globals")
    assert equal and ours == [[42, x, 42] for x in range(6)] and driver_g is None
    kept, fresh, plain = res.value("workers_keep_state_until_maxtasksperchild")
    assert kept == [1, 1, 2, 2, 3, 3]          # two workers, three chunks each
    assert fresh == [1] * 6                      # a new worker for every chunk
    assert plain == [x * x for x in range(10)]
    assert res.value("terminate_cancels") == [True, True, True]
    ended = set(res.value("terminate_ends_actors"))
    assert ended <= {"ok", "ActorDiedError", "TaskCancelledError"} and ended - {"ok"}
    assert res.value("not_picklable") == "NotImplementedError"
    assert res.value("bad_arguments") == [["TypeError", ["initializer must be a callable"]],
                                          ["ValueError", ["maxtasksperchild must be a positive "
                                                          "int or None"]],
                                          ["ValueError", ["Number of processes must be at "
                                                          "least 1"]]]
    assert res.value("inside_a_task") == [[x * x for x in range(20)], [0, 1, 4, 9, 16], 5]


def test_executor(run_job):
    res = run_job("util/executor.py", n=3, timeout=240)
    res.assert_ok()
    stdlib = same_as_stdlib(res)
    assert stdlib["exception"] == [True, ["bad 13"], True, ["ValueError", ["bad 13"]]]
    assert stdlib["map_error"] == [["ok", 12], ["ValueError", ["bad 13"]]]
    assert stdlib["map_timeout"] == ["TimeoutError", True]
    assert stdlib["as_completed"] == [0.05, 0.6]
    assert stdlib["callback_submits"] == 81
    assert stdlib["running"] == [True, False, False, 0.5, True]
    assert stdlib["cancel_futures"] == [False, True, True, True, True]
    assert stdlib["after_with"][0] == "RuntimeError"
    assert res.value("is_a_concurrent_executor") == [True, True, True, True, True]
    assert res.value("refs_pass_as_given") == 42
    assert res.value("inside_a_task") == [i * i for i in range(6)]


@pytest.mark.parametrize("env", [{}, {"HPCRAY_WORKER_PROCESSES": "0"},
                                 {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp,self",
                                  "HPCRAY_RANKS_PER_NODE": "1"}],
                         ids=["worker-processes", "in-rank", "network"])
def test_metrics(run_job, env):
    res = run_job("util/metrics.py", n=3, env=env, timeout=90)
    res.assert_ok()
    # every task's, actor call's and the driver's records, added up at the head
    assert res.value("counter") == [[{"parity": "even"}, 5.0], [{"parity": "odd"}, 5.0]]
    assert res.value("counter_description") == ["counter", "tasks that ran"]
    assert res.value("actor_counter") == [[{"route": "/"}, 3.0], [{"route": "/api"}, 1.0]]
    assert res.value("gauge") == [[{}, 3.0]]
    assert res.value("histogram") == [[0.1, 1.0], [2, 8, 0], 10]
    assert res.value("from_a_task") == res.value("counter")
    assert "missing value for tag key" in res.error("missing_tag")["msg"]
    assert "unknown tag keys" in res.error("unknown_tag")["msg"]
    assert res.error("counter_goes_up_only")["type"] == "ValueError"
    assert res.error("histogram_needs_boundaries")["type"] == "ValueError"
