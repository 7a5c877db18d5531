"""Launch under a real Slurm: `srun python -m hpcray` (``sbatch jobs/train.slurm`` is in
test_train.py, ``hpcray submit`` in test_submit.py).

Skipped when no Slurm cluster answers (CI starts one with slurm/local-cluster.sh)."""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import JOBS_DIR, PY_BIN_DIR


def _slurm_up():
    if shutil.which("sinfo") is None or shutil.which("srun") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(state in out.stdout for state in ("idle", "mixed", "allocated"))


pytestmark = pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster (slurm/local-cluster.sh start)")


def _env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "SLURM_"))}
    env["PATH"] = PY_BIN_DIR + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.parametrize("mode, code", [("0", 0), ("3", 3), ("fail", 1)])
def test_srun_launch(tmp_path, mode, code):
    script = JOBS_DIR / "slurm" / "srun_job.py"
    out = subprocess.run(["srun", "-n", "3", "--mpi=pmi2", sys.executable, "-m", "hpcray",
                          str(script), mode], capture_output=True, text=True, timeout=120,
                         env=_env(), cwd=tmp_path)
    assert out.returncode == code, out.stdout + out.stderr
    assert f"ARGV ['{mode}']" in out.stdout
    assert "RANKS [1, 2]" in out.stdout
    if mode == "fail":
        assert "boom on rank 0" in out.stderr
    # the job directory is named after the Slurm job, and says how the job ended
    job_dirs = glob.glob(str(tmp_path / "hpcray-*"))
    assert len(job_dirs) == 1 and os.path.basename(job_dirs[0])[len("hpcray-"):].isdigit()
    snapshot = json.load(open(os.path.join(job_dirs[0], "status.json")))
    assert snapshot["job"]["mode"] == "srun" and snapshot["job"]["exit_status"] == code
    assert snapshot["job"]["state"] == ("FINISHED" if code == 0 else "FAILED")
    assert "srun" in snapshot["job"]["launch"] and snapshot["job"]["ranks"] == 3
