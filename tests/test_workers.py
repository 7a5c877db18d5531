"""Tasks in worker processes (issue 12): user code never takes its rank down.

Each case kills or interrupts what runs in a worker process (a segfault through ctypes,
``os._exit``, SIGKILL, ``cancel``) and checks the error or the recovered result, how long
it took, that the ranks go on, the job's exit status, and that nothing is left behind;
under ``python -m hpcray`` (mpiexec), under a real ``srun``, and between simulated nodes
over the emulated network."""
import psutil
import pytest

from test_failures import NETWORK, _none_left
from test_slurm import _slurm_up

LAUNCHES = [
    pytest.param("hpcray", {}, id="mpiexec"),
    pytest.param("run", NETWORK, id="network"),
    pytest.param("srun", {}, id="srun",
                 marks=pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster")),
]


@pytest.mark.parametrize("launcher, env", LAUNCHES)
def test_a_crashed_worker_process_fails_its_task_alone(run_job, tmp_path, launcher, env):
    marks = tmp_path / "marks"
    marks.mkdir()
    res = run_job("workers/crashes.py", n=3, args=[marks], timeout=120, env=env,
                  launcher=launcher)
    assert res.returncode == 0, res.describe()
    for name, code, signal_name in (("segfault", -11, "SIGSEGV"), ("exits", 7, None),
                                    ("killed", -9, "SIGKILL")):
        crash = res.value(name)
        assert crash["exit_code"] == code, (name, crash)
        assert crash["attempts"] == 1, (name, crash)          # max_retries=0
        assert crash["is_ray_error"], crash
        text = crash["text"]
        assert "worker process" in text and "on host" in text and "rank" in text, text
        assert (signal_name or f"status {code}") in text, text
        assert crash["seconds"] < 5, crash                    # seen at once, not timed out
    always = res.value("always")
    assert always["exit_code"] == 3 and always["attempts"] == 3, always   # 1 + 2 retries
    assert res.value("always_marks") == 3
    retried = res.value("retried")
    assert retried["attempts"] == 2 and retried["retry_seconds"] < 2, retried
    assert res.value("many_crashes_in_a_row") == [f"row{i}" for i in range(12)]
    assert res.value("ranks_alive") is True
    assert res.value("ranks_after") == res.value("ranks_before") == [1, 2]
    _none_left(res, str(marks))


@pytest.mark.parametrize("launcher, env", LAUNCHES)
def test_cancel_interrupts_or_ends_a_running_task(run_job, tmp_path, launcher, env):
    marks = tmp_path / "marks"
    marks.mkdir()
    res = run_job("workers/cancel.py", n=3, args=[marks], timeout=120, env=env,
                  launcher=launcher)
    assert res.returncode == 0, res.describe()
    for name in ("sleep", "spin", "get", "force"):
        outcome = res.value(name)
        assert outcome.get("cancelled") and outcome["seconds"] < 3, (name, outcome)
    assert res.value("sleep_interrupted") is True        # KeyboardInterrupt in the task
    assert res.value("force_attempts") == 1               # a cancelled task is not retried
    assert res.value("tree") == "cancelled"
    assert res.value("queued") == ["cancelled", "queued1", "cancelled", "queued3",
                                   "cancelled", "queued5"]
    assert res.value("queued_ran") == ["queued1", "queued3", "queued5"]
    assert res.value("blockers") == ["done", "done"]
    assert res.value("child_finished") is False           # recursive: the child went too
    assert res.value("after") == [0, 2, 4, 6, 8, 10]
    assert res.value("healthy") is True
    _none_left(res, str(marks))


@pytest.mark.parametrize("launcher, env", LAUNCHES)
def test_actors_restart_after_their_process_dies(run_job, tmp_path, launcher, env):
    marks = tmp_path / "marks"
    marks.mkdir()
    res = run_job("workers/actor_restarts.py", n=3, args=[marks], timeout=180, env=env,
                  launcher=launcher)
    assert res.returncode == 0, res.describe()
    assert res.value("restarts_with_same_arguments") == [11, 2, True]
    assert res.value("running_call_retried") == ["survived", 3]
    ran_out = res.value("restarts_run_out")
    assert ran_out[0] is True and "after 1 restart(s) (max_restarts=1)" in ran_out[1], ran_out
    assert "SIGKILL" in ran_out[1], ran_out
    assert res.value("restarts_forever") == 2
    (first, code), later = res.value("without_restarts_the_actor_dies_with_the_cause")
    assert code == -11 and "SIGSEGV" in first and "rank" in first and "host" in first, first
    assert later == first                                   # dead for good
    assert res.value("init_failing_after_a_restart") == [True, 2]
    assert res.value("calls_during_a_restart_wait") == [True, "pong"]
    assert res.value("calls_wait_for_the_restart_when_they_may_retry") == ["pong", "not again"]
    assert res.value("own_process_for_an_actor_with_resources") == [True, True, 1]
    assert res.value("kill_with_restart") == [6, 2, True]
    assert res.value("tasks_after") == [1, 2, 3, 4]
    assert res.value("ranks_alive") is True
    _none_left(res, str(marks))


def _threshold_above_now(gib):
    """A memory threshold ``gib`` GiB above what this machine uses now."""
    memory = psutil.virtual_memory()
    return f"{min((memory.total - memory.available + gib * 2**30) / memory.total, 1.0):.4f}"


@pytest.mark.parametrize("launcher, env", LAUNCHES)
def test_the_memory_monitor_ends_the_newest_task_before_the_kernel_does(
        run_job, tmp_path, launcher, env):
    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(env, HPCRAY_MEMORY_USAGE_THRESHOLD=_threshold_above_now(1.0))
    res = run_job("workers/memory_hog.py", n=3, args=[marks], timeout=180, env=env,
                  launcher=launcher)
    assert res.returncode == 0, res.describe()
    attempts, others, seconds = res.value("recovered")
    assert attempts == 2 and others == [i * 2 for i in range(20)], res.describe()
    error = res.error("retries_spent")
    assert error["type"] == "OutOfMemoryError", error
    assert "memory use was" in error["msg"] and "HPCRAY_MEMORY_USAGE_THRESHOLD" in error["msg"]
    assert "rank" in error["msg"] and "host" in error["msg"] and "attempts: 2" in error["msg"]
    assert res.value("always_attempts") == 2               # max_retries=1
    assert "the memory monitor ended its worker process" in res.stderr
    assert res.value("ranks_alive") is True and res.value("after") == [0, 2, 4, 6]
    _none_left(res, str(marks))


@pytest.mark.parametrize("launcher", ["hpcray", pytest.param(
    "srun", marks=pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster"))])
def test_one_rank_runs_as_many_tasks_at_once_as_it_has_cpus(run_job, launcher):
    res = run_job("workers/one_rank_many_cpus.py", n=2, timeout=60, launcher=launcher,
                  env={"HPCRAY_CPUS_PER_RANK": "4"})
    assert res.returncode == 0, res.describe()
    assert res.value("cpus") == 4 and res.value("ranks") == [1]
    assert res.value("processes") >= 4
    assert res.value("at_once") == 4, res.describe()        # never more: 4 CPUs


def test_a_task_reads_an_object_it_got_again_from_its_get_cache(run_job):
    res = run_job("workers/get_cache.py", n=2, timeout=90)
    assert res.returncode == 0, res.describe()
    # cached after the first get, the same memory each time, read-only (Ray's semantics)
    assert res.value("task_reads_from_the_cache") == [True, True, False, False, True, 1]
    assert res.value("a_new_task_starts_with_no_cache") == 1
    assert res.value("failing_task") is True
    assert res.value("actor_call_reads_from_the_cache") == [True, 8 * (1 << 20) // 8 - 1]
    assert res.value("pins_left") == 0, res.describe()     # every task's pins went back
    assert res.value("freed") == 0, res.describe()         # so the object was freed


@pytest.mark.parametrize("n, launcher, env", [
    pytest.param(2, "hpcray", {"HPCRAY_CPUS_PER_RANK": "2"}, id="one-rank-two-cpus"),
    pytest.param(3, "hpcray", {}, id="two-ranks"),
    pytest.param(3, "run", NETWORK, id="two-nodes-network"),
    pytest.param(3, "srun", {}, id="two-ranks-srun",
                 marks=pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster")),
])
def test_a_long_task_delays_only_the_tasks_sent_ahead_behind_it(run_job, n, launcher, env):
    # One rank with 2 CPUs: its other process goes on with the stream. Two ranks (or two
    # simulated nodes over the emulated network): the tasks the head had queued on the
    # held-up one come back and run on the other.
    res = run_job("workers/held_back.py", n=n, timeout=90, env=env, launcher=launcher)
    assert res.returncode == 0, res.describe()
    assert res.value("long_is_late") is True
    # the tasks queued behind it in its process wait; results already made (held back for
    # a batch, or waiting at the rank) do not, nor do the tasks the rank has not sent yet
    assert res.value("late_besides_it") <= res.value("tasks_ahead"), res.describe()
    assert res.value("values") is True


def test_a_node_ends_one_task_at_a_time_for_its_memory_the_newest(run_job, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {"HPCRAY_MEMORY_USAGE_THRESHOLD": _threshold_above_now(1.5)}
    res = run_job("workers/memory_node.py", n=4, args=[marks], timeout=180, env=env)
    assert res.returncode == 0, res.describe()
    older = res.value("older_ones")
    assert [attempts for attempts, _ in older] == [1, 1], res.describe()   # never ended
    assert len({rank for _, rank in older}) == 2
    assert res.error("newest_one")["type"] == "OutOfMemoryError", res.describe()
    assert res.value("newest_attempts") == 2               # max_retries=1
    _none_left(res, str(marks))


def test_the_memory_monitor_ends_an_actor_that_allocates_too_much(run_job):
    env = {"HPCRAY_MEMORY_USAGE_THRESHOLD": _threshold_above_now(1.0)}
    res = run_job("workers/memory_actor.py", n=2, timeout=180, env=env)
    assert res.returncode == 0, res.describe()
    first = res.error("first_grow")
    assert first["type"] == "ActorUnavailableError", res.describe()   # cut short, restarts
    assert res.value("restarted") is True
    second = res.error("second_grow")
    assert second["type"] == "ActorDiedError", res.describe()         # restarts spent
    assert "the memory monitor ended its worker process" in second["msg"], second
    assert "max_restarts=1" in second["msg"], second
    assert res.value("after") == [0, 2, 4, 6]
