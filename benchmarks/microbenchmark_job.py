"""Run some rows of ``microbenchmark.py`` in one MPI job and return their figures: shared by the
scripts that compare settings (``recording_cost.py``, ``transports.py``)."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The launcher next to this Python (the pip wheel's), else the one on PATH.
MPIEXEC = next((path for path in (os.path.join(os.path.dirname(sys.executable), "mpiexec"),)
                if os.path.exists(path)), "mpiexec")


def run_rows(rows, env, duration, ranks=3, hpcray_args=()):
    """``{row: value}`` of one ``mpiexec -n ranks python -m hpcray [hpcray_args]
    microbenchmark.py --only rows`` run with ``env``; exits with its stderr if it fails."""
    command = [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "hpcray", *hpcray_args,
               os.path.join(HERE, "microbenchmark.py"), "--no-ray", "--json",
               "--duration", str(duration), "--only", ",".join(rows)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"microbenchmark failed:\n{done.stderr[-3000:]}")
    document = json.loads(done.stdout[done.stdout.index("{"):])
    metrics = document["runs"]["hpcray"]["metrics"]
    return {row: metrics[row].get("value") for row in rows if row in metrics}
