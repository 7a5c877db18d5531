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
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
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
    import glob
    import tempfile
    return glob.glob(os.path.join(tempfile.gettempdir(), "hpcray-spill-*"))


class Job:
    """One MPI job (or embedded ``python script.py``) running in the background."""

    _counter = 0

    def __init__(self, workdir: Path, job, n: int = 2, args=(), env=None,
                 embedded: bool = False, name: str | None = None):
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
            if var.startswith(("PMI_", "PMIX_", "HYDRA_", "MPI_LOCALRANK", "OMPI_")):
                del e[var]
        if env:
            e.update({k: str(v) for k, v in env.items()})
        self.env = e
        self.proc = None
        self.t0 = None

    # ------------------------------------------------------------------
    def start(self) -> "Job":
        self.shm_before = set(_shm_names())
        self.spill_before = set(_spill_dirs())
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd, cwd=str(self.workdir), env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=self._err, start_new_session=True,
        )
        return self

    def all_procs(self) -> list:
        """Descendants of the launcher plus anything else in its session."""
        seen = {}
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                seen[p.pid] = p
        except psutil.Error:
            pass
        for p in _session_procs(self.proc.pid):
            seen.setdefault(p.pid, p)
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
        self._remove_orphaned_segments()

    def _remove_orphaned_segments(self) -> None:
        """A job killed with SIGKILL cannot unlink MPICH's shared-memory segments: remove
        the ones that appeared while it ran and that no live process maps any more."""
        mapped = set()
        for maps in Path("/proc").glob("[0-9]*/maps"):
            try:
                mapped.update(line.rsplit("/", 1)[-1] for line in maps.read_text().splitlines()
                              if "/dev/shm/" in line)
            except OSError:
                pass
        for name in set(_shm_names()) - self.shm_before - mapped:
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass
        for path in set(_spill_dirs()) - self.spill_before:   # spill directories, likewise
            shutil.rmtree(path, ignore_errors=True)

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
        deadline = time.monotonic() + grace
        while True:
            procs = _session_procs(self.proc.pid)
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

    def wait(self, timeout: float = 60, leftover_grace: float = 3.0) -> JobResult:
        try:
            rc = self.proc.wait(timeout=max(0.1, timeout - (time.monotonic() - self.t0)))
        except subprocess.TimeoutExpired:
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
        out, err = self._read()
        return JobResult(self.cmd, rc, out, err, duration, self.script, leftover)
