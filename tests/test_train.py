"""The training job jobs/train.py: under mpiexec, on its own (embedded default) and as the
batch job jobs/train.slurm on a real Slurm cluster. Each run must print one
``epoch N loss X`` line per epoch, N = 1..epochs, with the loss going down."""
import math
import re
import subprocess
import uuid

import pytest

from helpers import REPO_ROOT
from test_slurm import _env as _slurm_env
from test_slurm import _slurm_up

TRAIN = REPO_ROOT / "jobs" / "train.py"
EPOCH_LINE = re.compile(r"^epoch (\d+) loss (\S+)$")


def parse_losses(text, epochs, context=""):
    """The losses of ``epoch N loss X`` lines; checks N = 1..epochs and a falling loss."""
    found = [EPOCH_LINE.match(line.strip()) for line in text.splitlines()]
    found = [m for m in found if m]
    assert [int(m.group(1)) for m in found] == list(range(1, epochs + 1)), context
    losses = [float(m.group(2)) for m in found]
    assert all(math.isfinite(loss) for loss in losses), context
    # The weights start at zero, where the logistic loss is log(2) whatever the data.
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5), context
    assert losses[-1] < losses[0], context
    assert re.search(r"^trained \d+ epochs: .* loss \S+ -> \S+ in \S+ s$", text, re.M), context
    return losses


def run_train(run_job, args, **kwargs):
    """Run jobs/train.py (in place, from the test's directory) through the tests' job helpers."""
    return run_job(TRAIN, args=args, name="train", **kwargs)


@pytest.mark.parametrize("args, epochs, workers", [
    (["--epochs", "5"], 5, 3),                           # one worker per worker rank
    (["--epochs", "3", "--workers", "5", "--seed", "7"], 3, 5),   # workers share ranks
])
def test_train_mpiexec(run_job, args, epochs, workers):
    res = run_train(run_job, args, n=4, timeout=120).assert_ok()
    parse_losses(res.stdout, epochs, res.describe())
    assert f"{workers} workers on ranks [1, 2, 3]" in res.stdout, res.describe()
    assert res.leftover == [], res.describe()


def test_allreduce_and_parameter_servers_train_alike(run_job):
    """Averaging by MPI allreduce among the workers gives the parameter servers' losses."""
    args = ["--epochs", "4", "--seed", "3"]
    allreduce = run_train(run_job, args, n=4, timeout=120).assert_ok()
    servers = run_train(run_job, args + ["--mode", "parameter-server"], n=4,
                        timeout=120).assert_ok()
    assert "allreduce, loss" in allreduce.stdout and "2 parameter servers" in servers.stdout
    assert parse_losses(allreduce.stdout, 4) == pytest.approx(parse_losses(servers.stdout, 4),
                                                              rel=1e-9)


def test_train_embedded(run_job):
    """``python jobs/train.py``: init() starts local workers by itself."""
    res = run_train(run_job, ["--epochs", "3"], embedded=True, timeout=120).assert_ok()
    parse_losses(res.stdout, 3, res.describe())
    assert res.leftover == [], res.describe()
    # actors released as the script ends must not trip the workers' exit
    assert "Traceback" not in res.stderr, res.describe()


def _final_state(job_id):
    """(state, exit code) of a finished job: sacct, or scontrol where accounting is off
    (the local cluster keeps a finished job for MinJobAge seconds)."""
    out = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode == 0 and out.stdout.strip():
        state, code = out.stdout.strip().splitlines()[0].split("|")
        return state.split()[0], code
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id],
                         capture_output=True, text=True, timeout=30)
    fields = dict(item.split("=", 1) for item in out.stdout.split() if "=" in item)
    return fields.get("JobState"), fields.get("ExitCode")


@pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster (slurm/local-cluster.sh start)")
def test_sbatch_train(tmp_path):
    """``sbatch jobs/train.slurm --epochs 5`` from the repository root, as a user submits it
    (``--output`` on the command line overrides the script's ``#SBATCH --output``)."""
    name = f"hpcray-train-test-{uuid.uuid4().hex[:8]}"
    cmd = ["sbatch", "--parsable", "--wait", f"--job-name={name}",
           f"--output={tmp_path}/train-%j.out", str(REPO_ROOT / "jobs" / "train.slurm"),
           "--epochs", "5"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                             env=_slurm_env(), cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", f"--name={name}"], capture_output=True, timeout=30)
        logs = "".join(p.read_text() for p in tmp_path.glob("train-*.out"))
        pytest.fail(f"sbatch --wait did not return within 240 s (job cancelled)\n{logs}")
    logs = "".join(p.read_text() for p in tmp_path.glob("train-*.out"))
    context = out.stdout + out.stderr + logs
    assert out.returncode == 0, context
    job_id = out.stdout.strip().split(";")[0]
    assert not (REPO_ROOT / f"hpcray-train-{job_id}.out").exists(), context
    assert _final_state(job_id) == ("COMPLETED", "0:0"), context
    parse_losses(logs, 5, context)
    assert "3 workers on ranks [1, 2, 3]" in logs, context
