"""The job directory of a job that starts, and what the head tells its observer about the
job: which directory (made once, by rank 0, and told to every rank), how the job was
launched, and how it ended (``head/observer.py`` does the recording and the writing)."""
import os
import sys

import psutil

from ..head import observer as head_observer
from ..jobdir import layout

LAUNCHERS = ("mpirun", "mpiexec", "mpiexec.hydra", "srun", "sbatch", "salloc", "prun", "aprun")


def make_job_dir(config, environ=None):
    """Rank 0: the job directory's path, made now; None if the user said ``off`` or it
    cannot be made (one warning: the job runs on without it)."""
    environ = os.environ if environ is None else environ
    wanted = config.job_dir
    if wanted.strip().lower() in ("off", "0", "none", "no"):
        return None
    path = wanted or layout.default_path(environ)
    try:
        return layout.create(path)
    except OSError as error:
        sys.stderr.write(f"hpcray: warning: cannot create the job directory {path} "
                         f"({error.strerror or error}); the job runs on without it (set "
                         f"HPCRAY_JOB_DIR to a writable place, or HPCRAY_JOB_DIR=off)\n")
        sys.stderr.flush()
        return None


def launch_command():
    """``(command line, mode)`` of the job's start, as well as this process can tell: the
    nearest ancestor that is a launcher (mpirun, srun, ...; mode "mpirun" or "srun"), else
    this process's own command line (mode "embedded": ``python script.py``)."""
    try:
        process = psutil.Process()
        own = " ".join(process.cmdline())
        for ancestor in process.parents():
            name = os.path.basename(ancestor.name())
            if name == "slurmstepd":           # a Slurm step: srun ran on another node
                environ = os.environ
                return (f"srun -n {environ.get('SLURM_NTASKS', '?')} {own}  (Slurm job "
                        f"{environ.get('SLURM_JOB_ID', '?')}, step "
                        f"{environ.get('SLURM_STEP_ID', '?')})", "srun")
            if name in LAUNCHERS:
                mode = "srun" if name in ("srun", "sbatch", "salloc") else "mpirun"
                return " ".join(ancestor.cmdline()) or name, mode
        return own, "embedded"
    except psutil.Error:
        return " ".join(sys.argv), "embedded"


def attach(rt, script=None, argv=None, mode=None):
    """Rank 0: the observer of the job, writing into its directory (if any), whose path is
    printed once."""
    argv = list(sys.argv if argv is None else argv)
    command, guessed = launch_command()
    info = {"id": os.path.basename(rt.job.job_dir or "").removeprefix(layout.PREFIX)
            or None, "script": script or (argv[0] if argv else ""), "argv": argv,
            "launch": command, "mode": mode or guessed}
    observer = head_observer.attach(rt, info)
    if rt.job.job_dir is not None:
        sys.stderr.write(f"hpcray: job directory {rt.job.job_dir} (hpcray status "
                         f"{rt.job.job_dir}; dashboard.html)\n")
        sys.stderr.flush()
    observer.start_writing()
    return observer


def describe(rt, **info):
    """What the launcher learnt later (the script and its arguments, the mode)."""
    if rt.observer is not None:
        rt.observer.describe(**info)


def finish(rt, exit_status):
    """The job ends: the head's own last events, then the final snapshot, page and
    report."""
    if rt.observer is None:
        return
    with rt.lock:
        rt.send_events(final=True)
    rt.observer.close(exit_status)
