"""Where a job's files go, and writing and reading its status snapshot.

A job directory holds::

    status.json      the head's latest snapshot (written every HPCRAY_STATUS_INTERVAL s,
                     atomically: a reader never sees half of one)
    status.js        the same, as ``hpcrayStatus({...});`` for dashboard.html (a page
                     opened from disk may load a script next to it, not fetch a file)
    dashboard.html   the page; at the end of the job it holds the final snapshot itself
    report.txt       the final summary (``hpcray status`` of the ended job)
    logs/rank-N.log  what rank N and its tasks printed

Everything is created private to the user (directories 0700, files 0600).
"""
import json
import os
import time

from ..exceptions import JobDirError

STATUS_JSON = "status.json"
STATUS_JS = "status.js"
DASHBOARD = "dashboard.html"
REPORT = "report.txt"
LOGS = "logs"
JSONP_FUNCTION = "hpcrayStatus"
PREFIX = "hpcray-"


def default_path(environ, now=None):
    """``./hpcray-<Slurm job id>`` in a Slurm job (``-<step>`` appended when run as a job
    step of its own), else ``./hpcray-<YYYYmmdd-HHMMSS>-<pid>``."""
    job_id = environ.get("SLURM_JOB_ID")
    if job_id:
        name = job_id
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        name = f"{stamp}-{os.getpid()}"
    return os.path.abspath(PREFIX + name)


def create(path):
    """Make the job directory and its ``logs`` folder (0700). Returns the absolute path.

    Raises:
        OSError: it cannot be made (read-only file system, no space, not a directory).
    """
    path = os.path.abspath(path)
    os.makedirs(os.path.join(path, LOGS), mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    os.chmod(os.path.join(path, LOGS), 0o700)
    probe = os.path.join(path, ".probe")
    with open_private(probe, "w") as handle:      # writable, and not full
        handle.write("ok")
    os.unlink(probe)
    return path


def open_private(path, mode="w"):
    """Open a file for writing that only its owner may read (0600)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    if "b" in mode:
        return os.fdopen(descriptor, mode)
    return os.fdopen(descriptor, mode, encoding="utf-8", errors="replace")


def rank_log_path(job_dir, rank):
    return os.path.join(job_dir, LOGS, f"rank-{rank}.log")


def write_atomically(path, text):
    """Replace ``path`` with ``text``: written beside it, then renamed over it."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open_private(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def to_json(snapshot):
    return json.dumps(snapshot, separators=(",", ":"), default=str)


def write_snapshot(job_dir, snapshot):
    """Write ``snapshot`` as status.json and status.js."""
    text = to_json(snapshot)
    write_atomically(os.path.join(job_dir, STATUS_JSON), text)
    # "</" would end the <script> element a page may inline this in
    escaped = text.replace("</", "<\\/")
    write_atomically(os.path.join(job_dir, STATUS_JS), f"{JSONP_FUNCTION}({escaped});\n")


def is_job_dir(path):
    return os.path.isdir(path) and (os.path.exists(os.path.join(path, STATUS_JSON))
                                    or os.path.isdir(os.path.join(path, LOGS)))


def find(path=None, cwd=None):
    """The job directory ``path`` names, or (None) the newest ``hpcray-*`` directory in
    ``cwd``.

    Raises:
        JobDirError: none there, or ``path`` is not a job directory.
    """
    if path is None:
        cwd = cwd or os.getcwd()
        found = [os.path.join(cwd, name) for name in os.listdir(cwd)
                 if name.startswith(PREFIX) and is_job_dir(os.path.join(cwd, name))]
        if not found:
            raise JobDirError(f"no job directory (hpcray-*) in {cwd}: name one, e.g. "
                              f"hpcray status ./hpcray-12345")
        return max(found, key=os.path.getmtime)
    if not os.path.exists(path):
        raise JobDirError(f"{path}: no such directory")
    if not is_job_dir(path):
        raise JobDirError(f"{path} is not an hpcray job directory (it has no {STATUS_JSON} "
                          f"and no {LOGS}/ folder)")
    return os.path.abspath(path)


def read_snapshot(job_dir, attempts=5):
    """The job's latest snapshot.

    Raises:
        JobDirError: there is none yet, or it cannot be read (a half-written or damaged
        file: read again a few times first, since a writer may be replacing it).
    """
    path = os.path.join(job_dir, STATUS_JSON)
    problem = None
    for attempt in range(attempts):
        try:
            with open(path, encoding="utf-8") as handle:
                snapshot = json.load(handle)
            if not isinstance(snapshot, dict) or "job" not in snapshot:
                raise ValueError("it holds no job")
            return snapshot
        except FileNotFoundError:
            raise JobDirError(f"{job_dir} has no status snapshot yet ({STATUS_JSON}): the "
                              f"job has not written one (it writes the first within a few "
                              f"seconds of its start)") from None
        except (ValueError, UnicodeDecodeError) as error:
            problem = error
            time.sleep(0.1 * (attempt + 1))
        except OSError as error:
            raise JobDirError(f"cannot read {path}: {error.strerror}") from None
    raise JobDirError(f"{path} is damaged or half-written ({problem}); if the job is "
                      f"running, try again in a moment")
