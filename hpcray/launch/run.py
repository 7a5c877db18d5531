"""``hpcray run -n N script.py [args]``: start a job under ``mpiexec`` so that it survives the
death of worker ranks.

Plain ``mpiexec -n N python -m hpcray script.py`` works, but Hydra (MPICH's mpiexec) ends
every rank as soon as one rank dies (its "auto-cleanup"): a worker rank killed by a signal
takes the whole job down (no hang: it ends within a second). ``hpcray run`` starts the same
job with ``-disable-auto-cleanup``: the survivors go on, the head retries the dead rank's work
elsewhere, and the job's exit status is the script's (each rank's supervisor hides a worker's
death from Hydra, ``launch/supervisor.py``). Under Slurm, ``srun python -m hpcray`` needs no
such option: srun spares the other tasks by default.
"""
import argparse
import os
import shutil
import sys

PROG = "hpcray run"


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run a hpcray job under mpiexec, surviving the death of worker "
                               "ranks (mpiexec -disable-auto-cleanup).")
    parser.add_argument("-n", "--np", type=int, required=True, metavar="N", dest="ranks",
                        help="ranks of the job (rank 0 runs the script, the others its tasks)")
    parser.add_argument("--ranks-per-node", type=int, metavar="K",
                        help="split each host's ranks into simulated nodes of K ranks")
    parser.add_argument("--object-store-memory", metavar="BYTES",
                        help="size of each node's object store, e.g. 4G")
    parser.add_argument("--gpus", metavar="IDS", help="GPU ids of each node, e.g. 0,1")
    parser.add_argument("--resources", metavar="JSON", help="custom resources of each rank")
    parser.add_argument("script", help="the Python script rank 0 runs as __main__")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return parser


def command(options, python=None):
    """The mpiexec command line ``hpcray run`` starts."""
    mpiexec = find_mpiexec(python)
    words = [mpiexec, "-disable-auto-cleanup", "-n", str(options.ranks),
             python or sys.executable, "-m", "hpcray"]
    for flag, value in (("--ranks-per-node", options.ranks_per_node),
                        ("--object-store-memory", options.object_store_memory),
                        ("--gpus", options.gpus), ("--resources", options.resources)):
        if value is not None:
            words += [flag, str(value)]
    return words + [options.script] + list(options.args)


def find_mpiexec(python=None):
    """MPI's mpiexec: on PATH, or next to this Python (the pip wheel's)."""
    found = shutil.which("mpiexec")
    if found:
        return found
    here = os.path.join(os.path.dirname(python or sys.executable), "mpiexec")
    if os.path.exists(here):
        return here
    raise SystemExit(f"{PROG}: mpiexec not found (pip install mpich provides one)")


def main(argv=None):
    """Entry point of ``hpcray run``: replaces this process with mpiexec."""
    options = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if options.ranks < 1:
        print(f"{PROG}: -n must be at least 1", file=sys.stderr)
        return 2
    if not os.path.exists(options.script):
        print(f"{PROG}: can't open file {options.script!r}", file=sys.stderr)
        return 2
    words = command(options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(words[0], words)
