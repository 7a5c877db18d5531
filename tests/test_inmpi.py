"""Run the pytest-mpi unit tests of tests/mpi inside a real 2-rank MPI job."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import PY_BIN_DIR


def test_units_inside_mpi():
    here = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "HYDRA_"))}
    env["PATH"] = PY_BIN_DIR + os.pathsep + env.get("PATH", "")
    try:
        # A test that hangs dumps every thread's stack (faulthandler_timeout) well before
        # the whole job is killed, and the failure shows it.
        out = subprocess.run(
            ["mpiexec", "-n", "2", sys.executable, "-m", "pytest", "--with-mpi", "-q", "-p",
             "no:cacheprovider", "-o", "faulthandler_timeout=45", str(here / "mpi")],
            capture_output=True, text=True, timeout=120, env=env, cwd=here.parent)
    except subprocess.TimeoutExpired as expired:
        def text(data):
            return (data.decode(errors="replace") if isinstance(data, bytes) else data) or ""
        pytest.fail(f"tests/mpi hung past 120 s:\n{text(expired.stdout)[-4000:]}\n"
                    f"{text(expired.stderr)[-8000:]}")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "2 passed" in out.stdout
