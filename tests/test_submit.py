"""``hpcray submit``: the batch script it writes, its errors, and real jobs under Slurm.

The dry-run and error tests need no Slurm (a fake ``sbatch`` stands in where one is
needed); the real submissions are skipped when no Slurm cluster answers (CI starts one with
slurm/local-cluster.sh)."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from helpers import JOBS_DIR, PY_BIN_DIR
from test_slurm import _env, _slurm_up

from hpcray.__main__ import main as hpcray_main


needs_slurm = pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster (slurm/local-cluster.sh start)")


def _run(args, cwd, timeout=60, env=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=env or _env())


def _submit_in_process(argv, capsys):
    """``hpcray submit argv...`` through the launcher's main: (status, stdout, stderr)."""
    try:
        code = hpcray_main(["submit"] + list(argv))
    except SystemExit as done:          # argparse errors and --help exit
        code = done.code
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- the batch script (--dry-run) ------------------------------------------------------------

def test_dry_run_writes_every_option(tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    out = _run([sys.executable, "-m", "hpcray", "submit", "train.py",
                "--nodes", "2", "--ntasks-per-node", "4", "--gpus-per-node", "4",
                "--time", "1:00:00", "--partition", "gpu", "--job-name", "my run #1",
                "--output", "run-%j.out", "--cpus-per-task", "8", "--ranks-per-node", "2",
                "--object-store-memory", "1G", "--dry-run",
                "--", "--lr", "0.1", "two words"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    script = shlex.quote(str(tmp_path / "train.py"))
    assert out.stdout.splitlines() == [
        "#!/bin/bash",
        '#SBATCH --job-name="my run #1"',       # sbatch reads double quotes; '#' would cut
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --time=1:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --output=run-%j.out",
        "# Written by hpcray submit: 8 rank(s); rank 0 runs train.py, the others run its tasks.",
        "set -euo pipefail",
        f"cd {shlex.quote(str(tmp_path))}",
        f"srun --mpi=pmi2 {shlex.quote(sys.executable)} -m hpcray --ranks-per-node=2 "
        f"--object-store-memory=1G {script} --lr 0.1 'two words'",
    ]


def _console_script_python(script):
    """The interpreter a console script runs with, as ``sys.executable`` names it there: its
    shebang's (``#!/usr/bin/env python3``: found on PATH), or the one pip's long-path form
    (``#!/bin/sh`` then ``'''exec' "/path/python" "$0" "$@"``) executes."""
    with open(script) as f:
        first, second = f.readline().strip(), f.readline().strip()
    assert first.startswith("#!"), first
    command = shlex.split(first[2:])
    if os.path.basename(command[0]) == "env":
        return shutil.which(command[1], path=_env()["PATH"])      # the PATH _run gives it
    if os.path.basename(command[0]) == "sh":
        exec_line = re.fullmatch(r"'''exec' (.+) \"\$0\" \"\$@\"", second)
        assert exec_line, second
        return shlex.split(exec_line.group(1))[0]
    return command[0]


def test_dry_run_minimal_through_console_script(tmp_path):
    """The console script ``hpcray submit``; only what was given (and the job name). The
    batch script names the interpreter the console script runs with: this Python, under the
    name its shebang gives (a venv's console scripts name ``.../bin/python3`` where the
    tests may run as ``.../bin/python``)."""
    (tmp_path / "job.py").write_text("")
    hpcray = os.path.join(PY_BIN_DIR, "hpcray")
    if not os.path.exists(hpcray):
        pytest.skip("the hpcray console script is not installed next to this Python")
    python = _console_script_python(hpcray)
    assert python and os.path.samefile(python, sys.executable), (python, sys.executable)
    out = _run([hpcray, "submit", str(tmp_path / "job.py"), "--ntasks-per-node", "3",
                "--time", "2", "--dry-run"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:5] == ["#!/bin/bash", "#SBATCH --job-name=job", "#SBATCH --nodes=1",
                         "#SBATCH --ntasks-per-node=3", "#SBATCH --time=2"]
    assert not any("gpus" in line or "partition" in line or "output" in line for line in lines)
    assert lines[-3:] == [
        "set -euo pipefail",
        f"cd {shlex.quote(str(tmp_path))}",
        f"srun --mpi=pmi2 {shlex.quote(python)} -m hpcray "
        f"{shlex.quote(str(tmp_path / 'job.py'))}",
    ]


def test_a_script_named_submit_py_still_runs(tmp_path):
    (tmp_path / "submit.py").write_text("import sys\nprint('RAN', sys.argv[1:])\n")
    out = _run([sys.executable, "-m", "hpcray", "submit.py", "x"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "RAN ['x']" in out.stdout


def test_launcher_help_mentions_submit(tmp_path):
    out = _run([sys.executable, "-m", "hpcray", "--help"], cwd=tmp_path)
    assert out.returncode == 0
    assert "python -m hpcray submit" in out.stdout


# ---- errors: exit 2, one line on stderr -------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["missing.py", "--ntasks-per-node", "2", "--time", "5"], "can't open file 'missing.py'"),
    (["job.py", "--nodes", "x", "--ntasks-per-node", "2", "--time", "5"],
     "argument --nodes: expected a positive integer, got 'x'"),
    (["job.py", "--nodes", "0", "--ntasks-per-node", "2", "--time", "5"],
     "argument --nodes: must be >= 1, got 0"),
    (["job.py", "--ntasks-per-node", "-2", "--time", "5"], "argument --ntasks-per-node"),
    (["job.py", "--ntasks-per-node", "2", "--gpus-per-node", "1.5", "--time", "5"],
     "argument --gpus-per-node: expected a positive integer, got '1.5'"),
    (["job.py", "--ntasks-per-node", "2", "--cpus-per-task", "0", "--time", "5"],
     "argument --cpus-per-task: must be >= 1"),
    (["job.py", "--ntasks-per-node", "2", "--time", "ten"], "bad time limit 'ten'"),
    (["job.py", "--ntasks-per-node", "2", "--time", "5", "--object-store-memory", "lots"],
     "--object-store-memory='lots' is not a size"),
    (["job.py", "--ntasks-per-node", "2"], "the following arguments are required: --time"),
    (["job.py", "--ntasks-per-node", "2", "--time", "5", "stray"],
     "unrecognized arguments: stray"),
    (["job.py", "--ntasks-per-node", "2", "--time", "5", "--job-name", "a\nb"],
     "a line break is not allowed"),
])
def test_bad_arguments(tmp_path, monkeypatch, capsys, argv, message):
    (tmp_path / "job.py").write_text("")
    monkeypatch.chdir(tmp_path)
    code, out, err = _submit_in_process(argv + ["--dry-run"], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("hpcray submit: "), err
    assert message in err


def _fake_sbatch(bin_dir, body):
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\n" + body)
    sbatch.chmod(0o755)


def test_no_sbatch_says_slurm_is_missing(tmp_path, monkeypatch, capsys):
    (tmp_path / "job.py").write_text("")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, err = _submit_in_process(["job.py", "--ntasks-per-node", "2", "--time", "5"],
                                        capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Slurm is not available" in err, err


def test_sbatch_failure_shows_its_stderr(tmp_path, monkeypatch, capsys):
    (tmp_path / "job.py").write_text("")
    _fake_sbatch(tmp_path / "bin", "cat >/dev/null\n"
                 "echo 'sbatch: error: invalid partition specified: nope' >&2\n"
                 "echo 'sbatch: error: Batch job submission failed: Invalid partition name "
                 "specified' >&2\nexit 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    code, out, err = _submit_in_process(["job.py", "--ntasks-per-node", "2", "--time", "5",
                                         "--partition", "nope"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert "sbatch failed (exit 1)" in err
    assert "Batch job submission failed: Invalid partition name specified" in err


def test_submit_pipes_the_script_to_sbatch_parsable(tmp_path, monkeypatch, capsys):
    (tmp_path / "job.py").write_text("")
    _fake_sbatch(tmp_path / "bin", f'cat > {tmp_path}/stdin.txt\n'
                 f'echo "$@" > {tmp_path}/args.txt\necho "4242;cluster"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    argv = ["job.py", "--ntasks-per-node", "2", "--time", "5", "--", "a b"]
    code, out, err = _submit_in_process(argv, capsys)
    assert (code, out, err) == (0, "4242\n", "")
    assert (tmp_path / "args.txt").read_text() == "--parsable\n"
    code, dry, _ = _submit_in_process(argv[:5] + ["--dry-run"] + argv[5:], capsys)
    assert code == 0
    assert (tmp_path / "stdin.txt").read_text() == dry


# ---- real jobs -------------------------------------------------------------------------------


FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def _job_state(job_id):
    """(state, exit code) of a job from scontrol (it keeps ended jobs for MinJobAge seconds),
    else from sacct where accounting is on; (None, None) when neither knows the job."""
    out = _run(["scontrol", "show", "job", "-o", job_id], cwd=None, timeout=30)
    state = re.search(r"\bJobState=(\S+)", out.stdout)
    code = re.search(r"\bExitCode=(\d+):\d+", out.stdout)
    if out.returncode == 0 and state and code:
        return state.group(1), int(code.group(1))
    out = _run(["sacct", "-n", "-X", "-P", "-o", "State,ExitCode", "-j", job_id],
               cwd=None, timeout=30)
    fields = out.stdout.strip().splitlines()[0].split("|") if out.stdout.strip() else []
    if out.returncode == 0 and len(fields) == 2 and ":" in fields[1]:
        return fields[0].split()[0], int(fields[1].split(":")[0])
    return None, None


def _wait_for_job(job_id, timeout=240):
    """Poll until the job reaches a final state; scancel it and fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    state = code = None
    try:
        while time.monotonic() < deadline:
            state, code = _job_state(job_id)
            if state in FINAL_STATES:
                return state, code
            if state is None:
                pytest.fail(f"job {job_id} is gone before it was seen ending")
            time.sleep(1)
        pytest.fail(f"job {job_id} did not end within {timeout} s (last state {state})")
    finally:
        if state not in FINAL_STATES:
            subprocess.run(["scancel", job_id], capture_output=True, timeout=30)


@needs_slurm
@pytest.mark.parametrize("exit_code, final_state", [(0, "COMPLETED"), (3, "FAILED")])
def test_submit_runs_on_three_ranks(tmp_path, exit_code, final_state):
    shutil.copy(JOBS_DIR / "submit" / "ranks.py", tmp_path / "job.py")
    out = _run([sys.executable, "-m", "hpcray", "submit", "job.py", "--nodes", "1",
                "--ntasks-per-node", "3", "--time", "2", "--job-name", "hpcray-test-submit",
                "--output", "job-%j.out", "--", str(exit_code), "two words"],
               cwd=tmp_path, timeout=150)
    assert out.returncode == 0, out.stdout + out.stderr
    job_id = out.stdout.strip()
    assert job_id.isdigit(), out.stdout
    state, code = _wait_for_job(job_id)
    log = tmp_path / f"job-{job_id}.out"
    text = log.read_text() if log.exists() else "(no output file)"
    assert (state, code) == (final_state, exit_code), text
    assert f"ARGV ['{exit_code}', 'two words']" in text
    assert "RANKS [1, 2]" in text


@needs_slurm
def test_submit_rejected_by_sbatch(tmp_path):
    shutil.copy(JOBS_DIR / "submit" / "ranks.py", tmp_path / "job.py")
    out = _run([sys.executable, "-m", "hpcray", "submit", "job.py", "--ntasks-per-node", "2",
                "--time", "2", "--partition", "no-such-partition"], cwd=tmp_path, timeout=150)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith("hpcray submit: sbatch failed") and out.stderr.count("\n") == 1
    assert "partition" in out.stderr.lower()
