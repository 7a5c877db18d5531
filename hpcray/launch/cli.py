"""The launcher: ``mpirun -n N python -m hpcray script.py [args...]`` (``hpcray/__main__.py``
calls :func:`main`; so does the ``hpcray`` console script).

Every rank joins the runtime; rank 0 (the head) runs ``script.py`` as ``__main__`` with
``sys.argv == [script.py, *args]`` and the other ranks serve tasks. The job's exit status is
the script's. An uncaught exception on the head prints its traceback and ends every rank.
"""
import argparse
import os
import runpy
import sys
import traceback

from ..config import Config
from ..exceptions import ConfigError
from ..jobdir import commands
from . import join, network, observing, preemption, run, session, submit, supervisor


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m hpcray",
        description="Run a Ray-style Python script on the ranks of an MPI job: rank 0 runs the "
                    "script, the other ranks execute its tasks.",
        epilog="example: mpirun -n 4 python -m hpcray jobs/quickstart.py. To survive the death "
               "of worker ranks under mpiexec: python -m hpcray run -n 4 script.py. To submit a "
               "Slurm batch job that runs a script this way: python -m hpcray submit script.py "
               "--nodes N --ntasks-per-node K --time T (see python -m hpcray submit --help). "
               "To see a job (running or ended) from its directory: hpcray status [JOB_DIR], "
               "hpcray dashboard [JOB_DIR], hpcray list tasks [JOB_DIR], hpcray summary "
               "tasks [JOB_DIR].")
    parser.add_argument("--version", action="version", version="hpcray 0.1.0")
    parser.add_argument("--ranks-per-node", type=int, metavar="K",
                        help="split each host's ranks into simulated nodes of K ranks "
                             "(HPCRAY_RANKS_PER_NODE)")
    parser.add_argument("--object-store-memory", metavar="BYTES",
                        help="size of each node's object store, e.g. 4G "
                             "(HPCRAY_OBJECT_STORE_MEMORY)")
    parser.add_argument("--gpus", metavar="IDS",
                        help="GPU ids of each node, e.g. 0,1, where none can be detected; "
                             "dealt one per worker rank (HPCRAY_GPUS)")
    parser.add_argument("--resources", metavar="JSON",
                        help='custom resources of each worker rank, e.g. \'{"ssd": 1}\' '
                             "(HPCRAY_RESOURCES)")
    parser.add_argument("script", help="the Python script to run on rank 0 as __main__")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return parser.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["submit"]:      # hpcray submit ...: write and sbatch a batch script
        return submit.main(argv[1:])
    if argv[:1] == ["run"]:         # hpcray run -n N ...: mpiexec, surviving dead ranks
        return run.main(argv[1:])
    if argv[:1] and argv[0] in commands.COMMANDS:   # hpcray status/dashboard/list/summary
        return commands.main(argv[0], argv[1:])
    options = parse_args(argv)
    if not os.path.exists(options.script):
        print(f"python -m hpcray: can't open file {options.script!r}", file=sys.stderr)
        return 2
    flags = {"ranks_per_node": options.ranks_per_node,
             "object_store_memory": options.object_store_memory,
             "gpus": options.gpus, "resources": options.resources}
    flags = {name: str(value) for name, value in flags.items() if value is not None}
    try:
        config = Config.load(flags=flags)
    except ConfigError:
        config = None                  # reported below, by rank 0 once MPI says which it is
    network.drop_launcher_sockets()    # (the supervisor's copy too, not only the rank's)
    if (config is None or config.supervise) and join.launched_by_mpi():
        supervisor.supervise()         # returns in the child, which becomes the rank
    MPI = join.import_mpi()
    comm = MPI.COMM_WORLD.Dup()
    try:
        # Every rank reads the same flags and (under mpirun/srun) the same environment, so a
        # bad value fails on every rank alike: no rank enters a collective alone.
        config = config or Config.load(flags=flags)
        rt = join.start_runtime(comm, config, on_exit=join.worker_exit_hard)
    except ConfigError as error:
        if comm.Get_rank() == 0:
            print(f"python -m hpcray: {error}", file=sys.stderr)
        comm.Free()
        MPI.Finalize()
        return 2
    session.state.mode = session.LAUNCHED
    if rt.rank != 0:
        preemption.ignore_on_worker()
        join.serve(rt)
        rt.lifecycle.close()
        join.finalize(rt, MPI)
        return 0
    preemption.install_on_head(config)
    observing.describe(rt, script=options.script, argv=[options.script] + list(options.args))
    exit_code = run_script(rt, options.script, options.args)
    preemption.stop_handling()
    return join.finish_launched(rt, exit_code)


def run_script(rt, script, args):
    """Run the user's script as ``__main__``; return the exit status it implies."""
    sys.argv = [script] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    with rt.lock:
        rt.progress.enter_user_code()
    try:
        runpy.run_path(script, run_name="__main__")
        return 0
    except preemption.JobPreempted:     # Slurm's time limit, preemption, scancel
        return preemption.finish(rt)
    except SystemExit as done:
        code = done.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        sys.stderr.write(f"hpcray: the script raised on rank 0 (host {os.uname().nodename}); "
                         f"ending all {rt.job.size} ranks\n")
        return 1
