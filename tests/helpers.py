"""Helpers shared by the hpcray test-suite: start real MPI jobs as subprocesses.

Every job runs in its own session (``start_new_session=True``) with stdout and
stderr redirected to files (no pipe can fill up and block a rank).  On a
timeout every Python process of the job gets SIGUSR1 first (hpcray registers
``faulthandler`` on it on every rank, so each rank dumps its stacks to
stderr), then, 2 s later, the whole process tree is killed and the test fails
with the captured output.

A job is a script file under ``tests/jobs`` (``JOBS_DIR``), run in place.  The job's
``PYTHONPATH`` holds that folder, so every rank imports ``jobkit`` (``check``,
``record``, ``settle``, ``runtime``): each check prints one ``RESULT {json}`` line, so
one MPI job can verify many things and a failing check names itself precisely.

What a job leaves behind -- processes still alive after it ended (``leftover``), its
/dev/shm segments and spill directories (``files_left``) -- is told apart from what
other jobs running on the machine at the same time own by ``JobTracker``, so that
another user's ``mpiexec`` can neither fail nor be touched by these checks.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
JOBS_DIR = Path(__file__).resolve().parent / "jobs"
PY_BIN_DIR = str(Path(sys.executable).parent)

def _tail(text: str, limit: int = 12000) -> str:
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} chars cut ...]\n" + text[-limit:]


@dataclass
class JobResult:
    cmd: list
    returncode: int
    stdout: str
    stderr: str
    duration: float
    script: Path
    leftover: list = field(default_factory=list)  # cmdlines still alive after exit
    files_seen: list = field(default_factory=list)  # the job's /dev/shm files, spill dirs
    files_left: list = field(default_factory=list)  # ... of them still there after it ended

    # -- presentation -------------------------------------------------------
    def describe(self) -> str:
        # RESULT lines of failed checks carry whole tracebacks: shorten them here
        # (value()/error() print the relevant one in full).
        lines = []
        for line in self.stdout.splitlines():
            if line.startswith("RESULT ") and len(line) > 240:
                line = line[:240] + " ...[cut]"
            lines.append(line)
        return (
            f"command: {' '.join(map(str, self.cmd))}\n"
            f"returncode: {self.returncode}   duration: {self.duration:.2f}s\n"
            f"leftover processes: {self.leftover}\n"
            f"the job's files (/dev/shm, spill dirs): {self.files_seen}; "
            f"left behind: {self.files_left}\n"
            f"----- stdout -----\n{_tail(chr(10).join(lines))}\n"
            f"----- stderr -----\n{_tail(self.stderr)}\n"
        )

    def assert_ok(self) -> "JobResult":
        if self.returncode != 0:
            pytest.fail(f"job exited with {self.returncode}\n" + self.describe(), pytrace=False)
        return self

    # -- RESULT lines -------------------------------------------------------
    @property
    def results(self) -> dict:
        out = {}
        for line in self.stdout.splitlines():
            if line.startswith("RESULT "):
                try:
                    d = json.loads(line[len("RESULT "):])
                except ValueError:
                    continue
                out[d["name"]] = d
        return out

    def value(self, name: str):
        """The value recorded by check/record ``name``; fails the test with the
        remote error (and the job's output) when the check raised."""
        res = self.results
        if name not in res:
            pytest.fail(f"check {name!r} produced no RESULT line\n" + self.describe(), pytrace=False)
        d = res[name]
        if "error" in d:
            err = d["error"]
            pytest.fail(
                f"check {name!r} raised {err['type']}: {err['msg']}\n{err['tb']}\n" + self.describe(),
                pytrace=False,
            )
        return d["value"]

    def error(self, name: str) -> dict:
        """The exception recorded by check ``name`` (dict with type, mro, msg,
        cause, tb, text); fails the test when the check did not raise."""
        res = self.results
        if name not in res:
            pytest.fail(f"check {name!r} produced no RESULT line\n" + self.describe(), pytrace=False)
        d = res[name]
        if "error" not in d:
            pytest.fail(
                f"check {name!r} was expected to raise but returned {d.get('value')!r}\n" + self.describe(),
                pytrace=False,
            )
        err = dict(d["error"])
        err["text"] = "\n".join(str(err.get(k) or "") for k in ("msg", "repr", "cause", "tb"))
        return err


def _is_python(p: psutil.Process) -> bool:
    try:
        name = p.name().lower()
        if name.startswith("python"):
            return True
        cmd = p.cmdline()
        return bool(cmd) and os.path.basename(cmd[0]).startswith("python")
    except (psutil.Error, OSError):
        return False


def _session_procs(sid: int) -> list:
    """All live processes whose session id is ``sid`` (catches orphans that
    were re-parented away from the job's process tree)."""
    procs = []
    me = os.getpid()
    for p in psutil.process_iter():
        if p.pid in (me, sid):
            continue
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                procs.append(p)
        except (OSError, psutil.Error):
            pass
    return procs


def _shm_names() -> list:
    try:
        return [n for n in os.listdir("/dev/shm") if n.startswith(("mpich", "hpcray"))]
    except OSError:
        return []


def _spill_dirs() -> list:
    return glob.glob(os.path.join(tempfile.gettempdir(), "hpcray-spill-*"))


# hpcray's own names carry the job's tag, "<pid of rank 0 in hex>-<random hex>" (hpcray/job.py):
# the store's lock file /dev/shm/hpcray-<tag>-node<i>.lock, its spill directory
# <tmp>/hpcray-spill-<tag>-node<i>.
_TAGGED = re.compile(r"hpcray-(?:spill-)?([0-9a-f]+)-[0-9a-f]+-node\d+")


def _tag_pid(path: str):
    """The pid of rank 0 of the job that made this hpcray file, or None (not hpcray's)."""
    m = _TAGGED.match(os.path.basename(path))
    return int(m.group(1), 16) if m else None


def _proc_table() -> dict:
    """{pid: (ppid, session id, start time, state)} of every process, from /proc/<pid>/stat."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    return table


def _stat(pid: int):
    """(ppid, session id, start time, state) of process ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
        fields = text[text.rindex(")") + 2:].split()         # after "pid (comm) "
        return int(fields[1]), int(fields[3]), int(fields[19]), fields[0]
    except (OSError, ValueError, IndexError):
        return None


def _shm_in_use(pid: int) -> set:
    """Names of the /dev/shm files process ``pid`` maps or holds open (unlinked ones too)."""
    paths = []
    try:
        with open(f"/proc/{pid}/maps") as maps:
            paths += [line[line.index("/dev/shm/"):].rstrip("\n") for line in maps
                      if "/dev/shm/" in line]
    except OSError:
        pass
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                paths.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
    except OSError:
        pass
    deleted = " (deleted)"
    return {p[len("/dev/shm/"):][:-len(deleted) if p.endswith(deleted) else None]
            for p in paths if p.startswith("/dev/shm/")}


class JobTracker:
    """What belongs to ONE job -- its processes, /dev/shm segments and spill directories --
    told apart from what other jobs running on the machine at the same time own (other
    users' tests, other suites, an unrelated ``mpiexec``).

    Processes: the launcher's descendants and its session (hydra starts every proxy and rank
    in a session of its own: the launcher's session alone holds none of them), learnt while
    the launcher runs -- its pid is reserved until it is reaped, so nothing else can take it
    -- and known by pid AND start time afterwards (pids are reused, quickly where pid_max
    is 32768).

    Files: a file is the job's when it appeared after the job started and

    * its name is hpcray's and carries the tag of a process of the job (the store's lock
      file and spill directory: ``hpcray-[spill-]<pid hex>-<random>-node<i>``, the pid of
      the job's rank 0) that was the job's when the file was first seen, or
    * it is another segment (MPICH's ``mpich_shm_*``) that a process of the job mapped or
      held open while it ran (``/proc/<pid>/maps``, ``/proc/<pid>/fd``).

    A watcher thread samples every 200 ms; while a new file is not attributed yet (a
    segment no process of the job was seen using, an hpcray tag naming no process of the
    job), every 50 ms, the processes every 100 ms. MPICH maps its segment from MPI_Init to
    MPI_Finalize (hpcray unlinks the names once every rank mapped them: the mapping shows
    them still), so the job's own are seen (``seen()``: tests can check that they were).
    Other jobs' files stay unattributed, whether they are in use or leaked.
    """

    def __init__(self, job: "Job"):
        self.job = job
        self.shm_before = set(_shm_names())
        self.spill_before = set(_spill_dirs())
        self.procs = {}            # pid -> start time: every process of the job seen
        self.mapped = set()        # untagged /dev/shm names a process of the job used
        self.tagged = {}           # new hpcray names (/dev/shm, spill dirs) -> ours? (None: open)
        self._last_scan = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="job-tracker")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _watch(self) -> None:
        while True:
            try:
                pending = self.sample()
            except Exception:              # never let the watcher die
                pending = True
            if self._stop.wait(0.05 if pending else 0.2):
                return

    def _is_ours(self, pid: int, table: dict) -> bool:
        return pid in table and table[pid][2] == self.procs.get(pid) and table[pid][3] != "Z"

    def _scan_procs(self, table: dict) -> None:
        """Learn the launcher's descendants and session members (only while the launcher is
        not reaped: until then its pid, the session id, is its own)."""
        root = self.job.proc.pid
        if self.job.proc.returncode is not None or root not in table:
            return
        self.procs.setdefault(root, table[root][2])
        if table[root][2] != self.procs[root]:
            return
        children = {}
        for pid, (ppid, _, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        found = {root} | {pid for pid, (_, sid, _, _) in table.items() if sid == root}
        stack = list(found)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        found.discard(os.getpid())
        for pid in found:
            self.procs.setdefault(pid, table[pid][2])

    def sample(self, force: bool = False) -> bool:
        """Learn the job's processes and which new files are its; True while a new file is
        not attributed to the job (yet, or because it is another job's)."""
        with self._lock:
            if self.job.proc is None:
                return False
            new_shm = set(_shm_names()) - self.shm_before
            new_spill = set(_spill_dirs()) - self.spill_before
            for name in new_shm | new_spill:
                if _tag_pid(name) is not None:
                    self.tagged.setdefault(name, None)
            untagged = {n for n in new_shm if _tag_pid(n) is None} - self.mapped
            undecided = [n for n, ours in self.tagged.items() if ours is None]
            now = time.monotonic()
            pending = bool(untagged or undecided)
            if not (force or now - self._last_scan >= (0.1 if pending else 0.2)):
                return pending
            self._last_scan = now
            table = _proc_table()
            self._scan_procs(table)
            for name in undecided:         # ours if its tag's process is ours right now
                pid = _tag_pid(name)
                if self._is_ours(pid, table):
                    self.tagged[name] = True
                elif pid in table and pid not in self.procs:
                    self.tagged[name] = False          # another job's rank 0 made it
            for pid in [p for p in self.procs if self._is_ours(p, table)]:
                # what the job's processes map: new files, and segments hpcray already
                # unlinked (it removes MPICH's names as soon as every rank mapped them)
                in_use = _shm_in_use(pid) - self.shm_before
                in_use = {n for n in in_use if n in untagged or n.startswith("mpich_shm_")}
                if in_use and (_stat(pid) or (0, 0, None))[2] == self.procs[pid]:
                    self.mapped |= in_use                      # (still the same process)
            return bool(untagged - self.mapped) or any(
                self.tagged[n] is None for n in undecided)

    def alive(self) -> list:
        """The job's processes still running (not zombies), launcher excepted."""
        table = _proc_table()
        return [pid for pid in self.procs if pid != self.job.proc.pid and self._is_ours(pid, table)]

    def _ours(self, path: str) -> bool:
        if _tag_pid(path) is None:
            return os.path.basename(path) in self.mapped
        ours = self.tagged.get(path)
        # undecided: its process was gone before it was seen -- ours if that pid was ours
        return ours if ours is not None else _tag_pid(path) in self.procs

    def seen(self) -> list:
        """The job's files seen while it ran (names in /dev/shm, paths of spill dirs)."""
        return sorted(self.mapped | {n for n in self.tagged if self._ours(n)})

    def left(self) -> list:
        """The job's files that are still there (once the job has ended: its leaks)."""
        now = (set(_shm_names()) - self.shm_before) | (set(_spill_dirs()) - self.spill_before)
        return sorted(p for p in now if self._ours(p))


class Job:
    """One MPI job (or embedded ``python script.py``) running in the background."""

    _counter = 0

    def __init__(self, workdir: Path, job, n: int = 2, args=(), env=None,
                 embedded: bool = False, name: str | None = None, launcher: str = "hpcray"):
        Job._counter += 1
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.script = JOBS_DIR / job                      # an absolute path stays as it is
        if not self.script.is_file():
            raise FileNotFoundError(f"no job file {self.script}")
        stem = name or f"{self.script.stem}-{Job._counter}"
        self.stdout_path = self.workdir / f"{stem}.stdout"
        self.stderr_path = self.workdir / f"{stem}.stderr"
        if embedded:
            self.cmd = [sys.executable, str(self.script), *map(str, args)]
        elif launcher == "python":         # mpiexec python script.py: init() joins the job
            self.cmd = ["mpiexec", "-n", str(n), sys.executable, str(self.script),
                        *map(str, args)]
        elif launcher == "run":            # hpcray run: mpiexec -disable-auto-cleanup
            self.cmd = [sys.executable, "-m", "hpcray", "run", "-n", str(n),
                        str(self.script), *map(str, args)]
        elif launcher == "srun":           # a real Slurm step (tests check Slurm is up)
            self.cmd = ["srun", "-n", str(n), "--mpi=pmi2", sys.executable, "-m", "hpcray",
                        str(self.script), *map(str, args)]
        else:
            self.cmd = ["mpiexec", "-n", str(n), sys.executable, "-m", "hpcray",
                        str(self.script), *map(str, args)]
        e = dict(os.environ)
        e["PATH"] = PY_BIN_DIR + os.pathsep + e.get("PATH", "")
        e["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(JOBS_DIR)]
                                          + ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
        e["PYTHONUNBUFFERED"] = "1"
        e["PYTHONFAULTHANDLER"] = "1"
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            e.setdefault(var, "1")
        # never let an outer MPI/PMI environment (e.g. pytest run under mpiexec) leak in
        for var in list(e):
            if var.startswith(("PMI_", "PMIX_", "HYDRA_", "MPI_LOCALRANK", "OMPI_")) or (
                    launcher == "srun" and var.startswith("SLURM_")):
                del e[var]
        if env:
            e.update({k: str(v) for k, v in env.items()})
        self.env = e
        self.proc = None
        self.t0 = None

    # ------------------------------------------------------------------
    def start(self) -> "Job":
        self.tracker = JobTracker(self)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd, cwd=str(self.workdir), env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=self._err, start_new_session=True,
        )
        self.tracker.start()
        return self

    def all_procs(self) -> list:
        """Descendants of the launcher and anything else in its session (while the launcher
        is not reaped: afterwards its pid may be another process's), and every process of
        the job the tracker saw that still runs (orphans re-parented away from the tree)."""
        seen = {}
        if self.proc.returncode is None:
            try:
                for p in psutil.Process(self.proc.pid).children(recursive=True):
                    seen[p.pid] = p
            except psutil.Error:
                pass
            for p in _session_procs(self.proc.pid):
                seen.setdefault(p.pid, p)
        for pid in self.tracker.alive():
            if pid not in seen:
                try:
                    seen[pid] = psutil.Process(pid)
                except psutil.Error:
                    pass
        return list(seen.values())

    def python_procs(self, include_launcher: bool = True) -> list:
        procs = [p for p in self.all_procs() if _is_python(p)]
        if include_launcher:
            try:
                lp = psutil.Process(self.proc.pid)
                if _is_python(lp) and lp.pid not in {p.pid for p in procs}:
                    procs.insert(0, lp)
            except psutil.Error:
                pass
        return procs

    def dump_stacks(self) -> None:
        for p in self.python_procs():
            try:
                p.send_signal(signal.SIGUSR1)
            except psutil.Error:
                pass

    def kill(self) -> None:
        self.tracker.sample(force=True)     # learn what the job runs and maps, while it can
        self.tracker.stop()
        procs = self.all_procs()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        try:
            self.proc.kill()
        except OSError:
            pass
        psutil.wait_procs(procs, timeout=5)
        self._remove_orphaned_files()

    def _remove_orphaned_files(self) -> None:
        """A job killed with SIGKILL cannot unlink MPICH's shared-memory segments nor remove
        its spill directories: remove the job's own (JobTracker), segments only where no live
        process maps them any more. Other jobs' files are never touched."""
        mine = self.tracker.left()
        in_use = set()
        if any(not p.startswith("/") for p in mine):
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    in_use |= _shm_in_use(int(entry))
        for path in mine:
            if path.startswith("/"):                  # a spill directory
                shutil.rmtree(path, ignore_errors=True)
            elif path not in in_use:
                try:
                    os.unlink(os.path.join("/dev/shm", path))
                except OSError:
                    pass

    def _read(self):
        for f in (self._out, self._err):
            try:
                f.close()
            except Exception:
                pass
        out = self.stdout_path.read_bytes().decode("utf-8", "replace")
        err = self.stderr_path.read_bytes().decode("utf-8", "replace")
        return out, err

    def _leftovers(self, grace: float) -> list:
        """The job's processes (JobTracker: never another job's) still alive ``grace`` s
        after its launcher ended, described; they are killed."""
        deadline = time.monotonic() + grace
        while True:
            procs = []
            for pid in self.tracker.alive():
                try:
                    procs.append(psutil.Process(pid))
                except psutil.Error:
                    pass
            if not procs or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        desc = []
        for p in procs:
            try:
                desc.append(f"{p.pid}: {' '.join(p.cmdline()) or p.name()}")
            except psutil.Error:
                pass
        for p in procs:  # never leak processes into later tests
            try:
                p.kill()
            except psutil.Error:
                pass
        return desc

    def _wait_for_exit(self, timeout: float) -> bool:
        """Wait until the launcher has exited, without reaping it (its pid stays reserved, so
        the tracker can still tell its session and children): False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.waitid(os.P_PID, self.proc.pid,
                             os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            except ChildProcessError:          # reaped already
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def wait(self, timeout: float = 60, leftover_grace: float = 3.0) -> JobResult:
        if self._wait_for_exit(max(0.1, timeout - (time.monotonic() - self.t0))):
            self.tracker.sample(force=True)    # the last look, while the launcher's pid is its
            rc = self.proc.wait()
        else:
            rc = None
        if rc is None:
            self.dump_stacks()
            time.sleep(2.0)
            self.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            out, err = self._read()
            res = JobResult(self.cmd, self.proc.returncode, out, err,
                            time.monotonic() - self.t0, self.script)
            pytest.fail(
                f"job timed out after {timeout}s (SIGUSR1 sent to every python rank for "
                f"stack dumps, then killed)\n" + res.describe(),
                pytrace=False,
            )
        duration = time.monotonic() - self.t0
        leftover = self._leftovers(leftover_grace)
        self.tracker.stop()
        out, err = self._read()
        return JobResult(self.cmd, rc, out, err, duration, self.script, leftover,
                         self.tracker.seen(), self.tracker.left())


def ray_python():
    """A Python that has Ray (``RAY_PYTHON``, else this one), or None."""
    for python in (os.environ.get("RAY_PYTHON"), sys.executable):
        if python and subprocess.run([python, "-c", "import ray"],
                                     capture_output=True, timeout=60).returncode == 0:
            return python
    return None


def ray_stdout(job: str, timeout: float = 300) -> str:
    """Run the job script ``job`` (under ``JOBS_DIR``) on Ray itself (``RAY_MODULE=ray``:
    the script imports it instead of hpcray) and return its standard output; skip the test
    when Ray is not installed."""
    python = ray_python()
    if python is None:
        pytest.skip("Ray is not installed (set RAY_PYTHON to a Python that has it)")
    env = dict(os.environ, RAY_MODULE="ray", PYTHONPATH=str(JOBS_DIR))
    out = subprocess.run([python, str(JOBS_DIR / job)], capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def run_on_ray(job: str, timeout: float = 300) -> dict:
    """:func:`ray_stdout`, read as ``{name: value}`` of what the job recorded."""
    recorded = {}
    for line in ray_stdout(job, timeout).splitlines():
        if line.startswith("RESULT "):
            entry = json.loads(line[len("RESULT "):])
            recorded[entry["name"]] = entry.get("value")
    return recorded

