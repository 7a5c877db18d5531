"""Resources per rank (declared GPUs, Slurm's variables, custom resources), GPU pinning with
CUDA_VISIBLE_DEVICES, placement by resources, and stopping on SIGTERM (preemption)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import JOBS_DIR, PY_BIN_DIR
from test_slurm import _env, _slurm_up


def test_declared_gpus_are_pinned_one_per_worker(run_job):
    # 3 workers, 2 declared GPUs: ranks 1 and 2 get one each, rank 3 none
    res = run_job("resources/pinning.py", n=4, timeout=120,
                  env={"HPCRAY_GPUS": "0,1", "HPCRAY_RESOURCES": '{"ssd": 1}'})
    res.assert_ok()
    assert res.value("driver_sees") == ""               # the head is not a GPU rank
    resources = res.value("resources")
    assert resources["GPU"] == 2.0 and resources["ssd"] == 3.0 and resources["CPU"] >= 3
    assert res.value("one_gpu") == [["1", "0", "[0]"], ["2", "1", "[1]"]]
    assert res.value("half_gpu") == ["0", "1"]
    assert ["3", "", "[]"] in res.value("anywhere")     # the rank without a GPU sees none
    assert res.value("actors") == ["0", "1"]
    assert res.value("ssd") == [1, 2, 3]
    # infeasible requests wait (Ray's semantics) with a warning that names them
    assert res.value("too_many_gpus") == [0, 0, 6, "TaskCancelledError"]
    assert res.value("unknown_resource") == [0, 0, 6, "TaskCancelledError"]
    assert "GPU=2" in res.stderr and "largest has GPU=1" in res.stderr
    assert "tape=1" in res.stderr and "will not run" in res.stderr


def test_resources_from_slurm_variables(run_job):
    # what srun would export with --cpus-per-task=2 --gpus=2 (GPUs 4 and 5 of the node)
    res = run_job("resources/slurm_vars.py", n=3, timeout=120,
                  env={"SLURM_CPUS_PER_TASK": "2", "SLURM_STEP_GPUS": "4,5",
                       "SLURM_MEM_PER_NODE": "2048"})
    res.assert_ok()
    resources = res.value("resources")
    assert resources["CPU"] == 4.0 and resources["GPU"] == 2.0
    assert resources["memory"] == 2048 * 2**20
    assert res.value("devices") == [["1", "4"], ["2", "5"]]


def test_bad_custom_resources_stop_the_job_clearly(run_job):
    res = run_job("resources/never_runs.py", n=2, timeout=60, env={"HPCRAY_RESOURCES": "{not json"})
    assert res.returncode != 0
    assert "HPCRAY_RESOURCES" in res.stderr and "never" not in res.stdout


def _wait_for(path, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.1)
    return False


def _run_and_signal(cmd, tmp_path, env, signal_target):
    out = tmp_path / "out.txt"
    with open(out, "w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path, start_new_session=True)
    try:
        assert _wait_for(out, "TRAINING", 60), out.read_text()
        signal_target(proc)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out.read_text()


def _job_state(job_id):
    """``"STATE ExitCode=a:b"`` from scontrol (accounting may be off: no sacct)."""
    shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                           text=True, timeout=30).stdout
    fields = dict(item.split("=", 1) for item in shown.split() if "=" in item)
    return f"{fields.get('JobState', '')} ExitCode={fields.get('ExitCode', '')}"


def _plain_env():
    env = _env()
    env["PATH"] = PY_BIN_DIR + os.pathsep + env["PATH"]
    return env


@pytest.mark.parametrize("launch", ["mpiexec", "embedded"])
def test_sigterm_runs_hooks_and_ends_the_job(tmp_path, launch):
    script = JOBS_DIR / "resources" / "preempted.py"
    checkpoint = tmp_path / "ckpt.txt"
    if launch == "mpiexec":
        cmd = ["mpiexec", "-n", "3", sys.executable, "-m", "hpcray", str(script), str(checkpoint)]
    else:
        cmd = [sys.executable, str(script), str(checkpoint)]
    env = _plain_env()
    env["HPCRAY_NUM_WORKERS"] = "2"
    code, output = _run_and_signal(cmd, tmp_path, env, lambda p: p.send_signal(signal.SIGTERM))
    assert code == 143, output
    assert "received SIGTERM" in output and "1 shutdown hook(s) ran" in output, output
    assert "HOOK checkpoint at step" in output
    assert checkpoint.read_text().startswith("step ")


@pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster (slurm/local-cluster.sh start)")
def test_scancel_signal_term_under_slurm(tmp_path):
    script = JOBS_DIR / "resources" / "preempted.py"
    checkpoint = tmp_path / "ckpt.txt"
    out = tmp_path / "slurm.out"
    batch = tmp_path / "job.slurm"
    batch.write_text(f"#!/bin/bash\n#SBATCH --ntasks=3\n#SBATCH --time=00:05:00\n"
                     f"#SBATCH --output={out}\n"
                     f"srun --mpi=pmi2 {sys.executable} -m hpcray {script} {checkpoint}\n")
    submitted = subprocess.run(["sbatch", "--parsable", str(batch)], capture_output=True,
                               text=True, timeout=30, env=_plain_env(), cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        assert _wait_for(out, "TRAINING", 90), out.read_text() if out.exists() else "no output"
        # what Slurm does at a time limit or preemption: SIGTERM to every task of the step
        subprocess.run(["scancel", "--signal=TERM", job_id], check=True, timeout=30)
        deadline = time.monotonic() + 90
        state = ""
        while time.monotonic() < deadline:
            state = _job_state(job_id)
            if state and not state.startswith(("RUNNING", "PENDING", "COMPLETING")):
                break
            time.sleep(0.5)
    finally:
        subprocess.run(["scancel", job_id], timeout=30)
    output = out.read_text()
    assert "received SIGTERM" in output and "1 shutdown hook(s) ran" in output, output
    assert checkpoint.read_text().startswith("step ")
    assert state.startswith("FAILED") and "ExitCode=143" in state, state
