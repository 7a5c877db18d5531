"""``hpcray submit``: write a Slurm batch script for a hpcray job and submit it.

    hpcray submit script.py --nodes 2 --ntasks-per-node 4 --gpus-per-node 4 --time 1:00:00 \\
        [--partition P] [--job-name NAME] [--output PATTERN] [--cpus-per-task C] \\
        [--ranks-per-node K] [--object-store-memory BYTES] [--dry-run] [-- script args...]

The batch script holds one ``#SBATCH`` line per option given, then ``set -euo pipefail``,
a ``cd`` into the directory ``hpcray submit`` ran in, and
``srun --mpi=pmi2 <this Python> -m hpcray /absolute/script.py args...``. It goes to
``sbatch --parsable`` on stdin and the job id is printed; ``--dry-run`` prints the script
and submits nothing. The job inherits the submitting shell's environment (sbatch's
default), so it finds the same Python and the same installed hpcray.

Every error (missing script, bad number, no ``sbatch``, sbatch refusing the job) is one line
on stderr and exit status 2.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

from ..config import parse_knob
from ..exceptions import ConfigError

PROG = "hpcray submit"
SBATCH_TIMEOUT_S = 120

# Slurm's --time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds; or no limit.
_TIME_RE = re.compile(r"^(\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|infinite|unlimited)$", re.IGNORECASE)
# #SBATCH values made of these characters need no quoting.
_PLAIN_RE = re.compile(r"^[A-Za-z0-9_.%/:=+,@-]+$")


class SubmitError(Exception):
    """A problem reported as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit 2."""

    def error(self, message):
        print(f"{PROG}: {message} (see {PROG} --help)", file=sys.stderr)
        sys.exit(2)


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def slurm_time(text):
    """argparse type: a time limit in one of Slurm's --time formats."""
    if not _TIME_RE.match(text.strip()):
        raise argparse.ArgumentTypeError(
            f"bad time limit {text!r} (use minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
            "D-HH:MM:SS)")
    return text.strip()


def build_parser():
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} script.py --ntasks-per-node K --time T [options] [-- script args...]",
        description="Write a Slurm batch script that runs SCRIPT with "
                    "'srun --mpi=pmi2 python -m hpcray' and submit it with sbatch; print the "
                    "job id. The job runs in the current directory with the current "
                    "environment and Python.",
        epilog=f"example: {PROG} train.py --nodes 2 --ntasks-per-node 4 --gpus-per-node 4 "
               "--time 1:00:00 -- --epochs 10")
    parser.add_argument("script", help="the Python script rank 0 runs")
    slurm = parser.add_argument_group("Slurm options (each becomes an #SBATCH line)")
    slurm.add_argument("--nodes", type=positive_int, default=1, metavar="N",
                       help="number of nodes (default: 1)")
    slurm.add_argument("--ntasks-per-node", type=positive_int, required=True, metavar="K",
                       help="MPI ranks per node; the job has N*K ranks, rank 0 runs the "
                            "script and the others its tasks")
    slurm.add_argument("--gpus-per-node", type=positive_int, metavar="G",
                       help="GPUs per node")
    slurm.add_argument("--time", type=slurm_time, required=True, metavar="T",
                       help="time limit, e.g. 30 (minutes), 2:00:00, 1-12:00:00")
    slurm.add_argument("--partition", metavar="P", help="partition (default: the cluster's)")
    slurm.add_argument("--job-name", metavar="NAME",
                       help="job name (default: the script's name without .py)")
    slurm.add_argument("--output", metavar="PATTERN",
                       help="stdout/stderr file, e.g. run-%%j.out (default: Slurm's "
                            "slurm-%%j.out in the current directory)")
    slurm.add_argument("--cpus-per-task", type=positive_int, metavar="C",
                       help="CPUs per rank")
    launcher = parser.add_argument_group("hpcray options (passed to python -m hpcray)")
    launcher.add_argument("--ranks-per-node", type=positive_int, metavar="K",
                          help="split each host's ranks into simulated nodes of K ranks")
    launcher.add_argument("--object-store-memory", metavar="BYTES",
                          help="size of each node's object store, e.g. 4G")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the batch script instead of submitting it")
    return parser


def split_script_args(argv):
    """Split ``argv`` at the first ``--``: (options for submit, arguments for the script)."""
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def parse_args(argv):
    own, script_args = split_script_args(list(argv))
    options = build_parser().parse_args(own)
    options.script_args = script_args
    return options


def check_options(options):
    """Check what argparse cannot: the script exists, the store size parses."""
    if not os.path.isfile(options.script):
        raise SubmitError(f"can't open file {options.script!r}")
    if options.object_store_memory is not None:
        try:
            parse_knob("object_store_memory", options.object_store_memory,
                       "--object-store-memory")
        except ConfigError as error:
            raise SubmitError(str(error)) from None


def sbatch_value(value):
    """Quote a value for an ``#SBATCH`` line as sbatch's own parser reads it: double quotes
    and backslash escapes (single quotes are literal there and ``#`` starts a comment)."""
    if "\n" in value or "\r" in value:
        raise SubmitError(f"a line break is not allowed in {value!r}")
    if _PLAIN_RE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sbatch_directives(options):
    """The ``#SBATCH`` lines, in a fixed order, for the options that were given."""
    job_name = options.job_name
    if job_name is None:
        job_name = os.path.splitext(os.path.basename(options.script))[0] or "hpcray"
    values = [
        ("job-name", job_name),
        ("nodes", options.nodes),
        ("ntasks-per-node", options.ntasks_per_node),
        ("gpus-per-node", options.gpus_per_node),
        ("cpus-per-task", options.cpus_per_task),
        ("time", options.time),
        ("partition", options.partition),
        ("output", options.output),
    ]
    return [f"#SBATCH --{name}={sbatch_value(str(value))}"
            for name, value in values if value is not None]


def srun_command(options, python=None):
    """The ``srun`` line: the same Python, ``-m hpcray``, launcher options, absolute script."""
    words = ["srun", "--mpi=pmi2", python or sys.executable, "-m", "hpcray"]
    if options.ranks_per_node is not None:
        words.append(f"--ranks-per-node={options.ranks_per_node}")
    if options.object_store_memory is not None:
        words.append(f"--object-store-memory={options.object_store_memory}")
    words.append(os.path.abspath(options.script))
    words.extend(options.script_args)
    return shlex.join(words)


def batch_script(options, workdir=None, python=None):
    """The whole batch script as text."""
    workdir = os.path.abspath(workdir or os.getcwd())
    ranks = options.nodes * options.ntasks_per_node
    lines = ["#!/bin/bash"]
    lines += sbatch_directives(options)
    lines += [
        f"# Written by hpcray submit: {ranks} rank(s); rank 0 runs "
        f"{os.path.basename(options.script)}, the others run its tasks.",
        "set -euo pipefail",
        f"cd {shlex.quote(workdir)}",
        srun_command(options, python),
    ]
    return "\n".join(lines) + "\n"


def find_sbatch():
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SubmitError("sbatch not found: Slurm is not available on this machine "
                          "(use --dry-run to see the batch script)")
    return sbatch


def submit(script_text):
    """Give the batch script to ``sbatch --parsable`` on stdin; return the job id."""
    sbatch = find_sbatch()
    try:
        done = subprocess.run([sbatch, "--parsable"], input=script_text, capture_output=True,
                              text=True, timeout=SBATCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SubmitError(f"sbatch did not answer within {SBATCH_TIMEOUT_S} s") from None
    except OSError as error:
        raise SubmitError(f"could not run sbatch: {error}") from None
    if done.returncode != 0:
        message = "; ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
        raise SubmitError(f"sbatch failed (exit {done.returncode}): "
                          f"{message or done.stdout.strip() or 'no message'}")
    job_id = done.stdout.strip().split(";")[0]      # --parsable: "id" or "id;cluster"
    if not job_id:
        raise SubmitError("sbatch printed no job id")
    return job_id


def main(argv=None):
    """Entry point of ``hpcray submit``; returns the exit status."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        check_options(options)
        text = batch_script(options)
        if options.dry_run:
            sys.stdout.write(text)
            return 0
        print(submit(text))
    except SubmitError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
