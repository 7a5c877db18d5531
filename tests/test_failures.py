"""Dead ranks: the job goes on (issue 12). One small case per failure point, in the style of
CPython's test_deadlock.py, each asserting the recovered result or the error, the time to
detect, the job's exit status, and that nothing is left behind; under ``hpcray run``
(mpiexec -disable-auto-cleanup), under a real ``srun``, and between simulated nodes over the
emulated network (MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp,self).

Plain ``mpiexec`` (Hydra's auto-cleanup) ends the whole job when a rank dies: that is
checked too, for the one thing that matters there: it ends, promptly, without a hang."""
import json

import psutil
import pytest

from test_slurm import _slurm_up

NETWORK = {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp,self", "HPCRAY_RANKS_PER_NODE": "1"}
LAUNCHES = [
    pytest.param("run", {"HPCRAY_RANKS_PER_NODE": "1"}, id="hpcray-run"),
    pytest.param("run", NETWORK, id="hpcray-run-network"),
    pytest.param("srun", {"HPCRAY_RANKS_PER_NODE": "1"}, id="srun",
                 marks=pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster")),
]


def _none_left(res, marker):
    """No process of this job is left (found by an argument only this job has), and none of
    its files (for mpiexec launches the tracker attributes them)."""
    left = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or ()):
                left.append(proc.pid)
        except psutil.Error:
            pass
    assert not left, f"processes left: {left}\n" + res.describe()
    assert not res.leftover and not res.files_left, res.describe()


@pytest.mark.parametrize("launcher, env", LAUNCHES)
def test_a_worker_rank_killed_mid_job(run_job, tmp_path, launcher, env):
    mark = tmp_path / "died"
    res = run_job("failures/dead_rank.py", n=4, args=[mark], timeout=120, env=env,
                  launcher=launcher)
    assert res.returncode == 0, res.describe()                 # the script's status
    assert res.value("squares") == [i * i for i in range(12)]  # its tasks ran elsewhere
    assert res.value("dying_task") == "WorkerCrashedError"     # max_retries=0: not again
    assert res.value("detect_seconds") < 1.0, res.describe()
    victim = res.value("victim")
    assert res.value("dead") == [victim]
    assert res.value("after") == [i * i for i in range(6)]
    assert victim not in res.value("ranks_after")
    assert f"rank {victim} (host" in res.stderr and "goes on without it" in res.stderr
    _none_left(res, str(mark))
    # The job's report shows the dead rank, and when it died (issue 14: alive or dead).
    job_dirs = [path for path in tmp_path.iterdir() if path.name.startswith("hpcray-")]
    assert len(job_dirs) == 1, job_dirs
    report = json.loads((job_dirs[0] / "status.json").read_text())
    alive = {entry["rank"]: entry["alive"] for entry in report["ranks"]}
    assert alive[victim] is False and all(alive[r] for r in alive if r != victim), alive
    assert any(event["level"] == "ERROR" and f"rank {victim}" in event["message"]
               for event in report["events"]), report["events"]
    assert report["job"]["state"] == "FINISHED" and report["job"]["exit_status"] == 0


@pytest.mark.parametrize("launcher, env", LAUNCHES)
def test_a_dead_rank_with_actors_objects_and_a_collective_group(run_job, launcher, env):
    res = run_job("failures/dead_rank_objects.py", n=4, timeout=120, env=env,
                  launcher=launcher)
    assert res.returncode == 0, res.describe()
    assert res.value("before") == [[3.0] * 4] * 3
    victim = res.value("victim_rank")
    assert res.value("detect_seconds") < 1.0
    error = res.error("actor_call")
    assert error["type"] == "ActorDiedError" and f"its rank {victim} died" in error["msg"]
    error = res.error("owned_object")
    assert error["type"] == "OwnerDiedError" and f"rank {victim}" in error["msg"]
    for name in ("collective_members", "collective_after"):
        error = res.error(name)
        assert "CollectiveError" in error["mro"] and "died" in error["msg"], error
    assert res.value("collective_seconds") < 5.0               # not the collective timeout
    assert sorted(res.value("survivors")) == sorted(r for r in (1, 2, 3) if r != victim)
    start = res.value("phoenix_start")                 # built again elsewhere, state anew,
    rank, value = res.value("restarted_actor_call_in_flight")    # the call run again there
    assert rank != victim and value == start + 1, res.describe()
    assert res.value("restarted_actor_after") == [rank, start + 2]
    error = res.error("call_in_flight_without_retries")          # max_task_retries=0
    assert error["type"] == "ActorUnavailableError", error
    assert "max_task_retries=0" in error["msg"] and "died" in error["msg"], error
    rank, value = res.value("that_actor_after")                  # but the actor is back
    assert rank != victim and value == res.value("frail_start") + 1
    error = res.error("child_of_the_dead_rank")                  # dies with its owner
    assert error["type"] == "ActorDiedError" and f"owner, rank {victim}" in error["msg"], error
    rank, value = res.value("detached_child_after")              # unless detached
    assert rank != victim and value == 3


@pytest.mark.parametrize("launcher", ["run", pytest.param(
    "srun", marks=pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster"))])
def test_the_head_killed_ends_the_job_with_a_message_on_every_rank(run_job, launcher):
    res = run_job("failures/dead_head.py", n=4, timeout=60, launcher=launcher)
    assert res.returncode == 137, res.describe()               # 128 + SIGKILL
    assert res.duration < 15, res.describe()
    assert "the head (rank 0, host" in res.stderr and "was killed by SIGKILL" in res.stderr
    for rank in (1, 2, 3):
        assert f"rank {rank} (host" in res.stderr, res.describe()
    assert not res.leftover, res.describe()


def test_plain_mpiexec_ends_the_job_without_a_hang(run_job, tmp_path):
    """Hydra's auto-cleanup ends every rank when one dies (hpcray run avoids that)."""
    res = run_job("failures/dead_rank.py", n=4, args=[tmp_path / "died"], timeout=60,
                  env={"HPCRAY_RANKS_PER_NODE": "1"})
    assert res.returncode != 0 and res.duration < 30, res.describe()
    assert not res.leftover, res.describe()


LOST_NODE = [
    pytest.param("run", dict(NETWORK, HPCRAY_RANKS_PER_NODE="1"), id="hpcray-run-network"),
    pytest.param("run", {"HPCRAY_RANKS_PER_NODE": "1"}, id="hpcray-run"),
    pytest.param("srun", {"HPCRAY_RANKS_PER_NODE": "1"}, id="srun",
                 marks=pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster")),
]


@pytest.mark.parametrize("launcher, env", LOST_NODE)
def test_objects_lost_with_their_node_are_made_again(run_job, tmp_path, launcher, env):
    marks = tmp_path / "marks"
    marks.mkdir()
    res = run_job("failures/lost_node_objects.py", n=4, args=[marks], timeout=120, env=env,
                  launcher=launcher)
    assert res.returncode == 0, res.describe()
    assert res.value("on_victim") >= 1, res.describe()
    sums = [i * 500_000 for i in range(6)]
    assert res.value("owner_get") == list(range(6))
    assert res.value("as_argument") == sums and res.value("borrowed") == sums
    lost = res.value("victim_made")
    assert res.value("runs") == [2 if i in lost else 1 for i in range(6)], res.describe()
    for outcome in res.value("once"):                         # max_retries=0: not again
        if not outcome[0]:
            assert outcome[1] == "got it", outcome            # its node is alive
            continue
        name, text = outcome[1:]
        assert name == "ObjectReconstructionFailedMaxAttemptsExceededError", text
        assert "lost with node" in text and "max_retries=0" in text
    assert res.value("seconds") < 10
    _none_left(res, str(marks))
