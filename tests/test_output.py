"""What tasks and actors print reaches the driver, as in Ray (issue 14): prefixed with the
task's or actor's name, pid, rank and node, stdout to stdout and stderr to stderr, repeated
lines folded as Ray's deduplicator does, into each rank's log file; progress bars
(``hpcray.experimental.tqdm_ray``) as clean lines; the progress line of a long ``get``.

The jobs run under ``python -m hpcray`` (tasks in worker processes, and on the ranks' own
threads), embedded (``python script.py``) and as a single rank; the pure parts (the
deduplicator, the display on a terminal and off it, the capture) are driven here with no
MPI. When Ray is installed (``RAY_PYTHON``, else /tmp/rayvenv), the same scripts run on it
and print the same, prefixes aside."""
import io
import os
import re
import subprocess
import sys
import time

import pytest

from helpers import JOBS_DIR
from hpcray.core import output
from hpcray.experimental import tqdm_ray

PREFIX = re.compile(r"^\((?:(\S+) )?pid=(\d+)(?:, rank=(\d+), node=([^)]+)|[^)]*)\) (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _prefixed(text):
    """``[(name, pid, rank, node, text)]`` of the prefixed lines of ``text``."""
    found = []
    for line in text.splitlines():
        match = PREFIX.match(ANSI.sub("", line))
        if match:
            name, pid, rank, node, rest = match.groups()
            found.append((name, int(pid), None if rank is None else int(rank), node, rest))
    return found


def _clean(text):
    assert "\r" not in text and "\x1b" not in text, repr(text[-2000:])


# ---------------------------------------------------------------------- real jobs
PRINTS = [
    pytest.param(3, {}, False, id="worker-processes"),
    pytest.param(3, {"HPCRAY_WORKER_PROCESSES": "0"}, False, id="in-rank"),
    pytest.param(1, {"HPCRAY_WORKER_PROCESSES": "0"}, False, id="one-rank"),
    pytest.param(1, {}, True, id="embedded"),
]


@pytest.mark.parametrize("n, env, embedded", PRINTS)
def test_what_tasks_and_actors_print_reaches_the_driver_prefixed(run_job, tmp_path, n, env,
                                                                 embedded):
    job_dir = tmp_path / "jobdir"
    res = run_job("output/prints.py", n=n, embedded=embedded, timeout=90,
                  env=dict(env, HPCRAY_JOB_DIR=str(job_dir)))
    res.assert_ok()
    shout_pid, shout_rank, host = res.value("shout")
    actor_pid, actor_rank, _ = res.value("counter")
    out, err = _prefixed(res.stdout), _prefixed(res.stderr)
    shout = ("shout", shout_pid, shout_rank, host)
    counter = ("Counter", actor_pid, actor_rank, host)
    assert out == [shout + ("shout out 1",), shout + ("shout write 1",),
                   shout + ("shout in pieces",), counter + ("counter built",),
                   counter + ("counter incr",)], res.describe()
    assert err == [shout + ("shout err 1",), counter + ("counter complains",)], res.describe()
    lines = res.stdout.splitlines()
    # what a task printed is shown before get returns its result; the driver's own lines
    # have no prefix
    assert lines.index(next(line for line in lines if line.endswith("shout in pieces"))) < \
        lines.index(next(line for line in lines if '"name": "shout"' in line))
    assert "driver line" in lines
    # each rank's log file holds what it passed on, prefixed, with a time stamp
    log = (job_dir / "logs" / f"rank-{shout_rank}.log").read_text()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.search(rf"^{stamp} stdout \(shout pid={shout_pid}, rank={shout_rank}, "
                     rf"node={re.escape(host)}\) shout out 1$", log, re.M), log
    assert re.search(rf"^{stamp} stderr \(Counter pid={actor_pid}, .*\) counter complains$",
                     log, re.M), log
    assert "driver line" not in log


def test_log_to_driver_false_keeps_it_off_the_driver(run_job, tmp_path):
    job_dir = tmp_path / "jobdir"
    res = run_job("output/prints.py", n=2, args=["quiet"], timeout=90,
                  env={"HPCRAY_JOB_DIR": str(job_dir)})
    res.assert_ok()
    assert _prefixed(res.stdout) == [] and _prefixed(res.stderr) == [], res.describe()
    assert "driver line" in res.stdout
    assert "shout out 1" in (job_dir / "logs" / "rank-1.log").read_text()


def _dedup_counts(text):
    """(lines printed, lines counted in [repeated Nx] lines) of the dedup job's output."""
    printed = counted = 0
    for _, _, _, _, rest in _prefixed(text):
        repeated = re.fullmatch(r"hello from task \d+ \[repeated (\d+)x across cluster\].*",
                                rest)
        if repeated:
            counted += int(repeated.group(1))
        else:
            assert re.fullmatch(r"hello from task \d+", rest), rest
            printed += 1
    return printed, counted


def test_repeated_lines_are_folded_as_ray_folds_them(run_job):
    res = run_job("output/dedup.py", n=3, timeout=90)
    res.assert_ok()
    printed, counted = _dedup_counts(res.stdout)
    assert printed + counted == 100 and counted >= 50, res.describe()
    assert res.stdout.count("across cluster]") >= 1
    assert "HPCRAY_DEDUP_LOGS=0" in res.stdout                # the hint, once
    assert res.stdout.count("HPCRAY_DEDUP_LOGS=0") == 1
    first = _prefixed(res.stdout)[0]
    assert first[0] == "same" and first[4].startswith("hello from task ")


def test_dedup_off_prints_every_line(run_job):
    res = run_job("output/dedup.py", n=2, timeout=90, env={"HPCRAY_DEDUP_LOGS": "0"})
    res.assert_ok()
    assert _dedup_counts(res.stdout) == (100, 0), res.describe()
    assert "repeated" not in res.stdout


def test_bars_of_tasks_actors_and_the_driver_are_clean_lines(run_job):
    res = run_job("output/bars.py", n=3, args=["6"], timeout=90)
    res.assert_ok()
    _clean(res.stdout)
    _clean(res.stderr)
    bars = [entry for entry in _prefixed(res.stderr)]
    finals = {entry[4].split(":")[0]: entry for entry in bars if "100%" in entry[4]}
    assert set(finals) == {"work 0", "work 1", "epochs"}, res.describe()
    assert "| 50/50 [" in finals["work 0"][4] and "| 50/50 [" in finals["work 1"][4]
    assert finals["epochs"][0] == "Trainer" and "7/7" in finals["epochs"][4]
    assert finals["work 0"][0] == "work" and finals["work 0"][2] in (1, 2)
    # a 6 s bar shows once midway (every ~5 s), then once closed; never as text lines
    assert 2 <= sum(1 for entry in bars if entry[4].startswith("work 0:")) <= 3, res.describe()
    assert re.search(r"^driver: 100%\|#+\| 3/3 \[", res.stderr, re.M), res.describe()
    assert "__magic" not in res.stdout and "uuid" not in res.stdout


def test_a_long_get_shows_a_progress_line(run_job):
    res = run_job("output/long_get.py", n=3, timeout=90)
    res.assert_ok()
    _clean(res.stderr)
    assert re.search(r"^hpcray: get: [0-2]/3 objects ready, [3-5] s$", res.stderr, re.M), \
        res.describe()
    assert re.search(r"^hpcray: get: 3/3 objects ready, \d s \(done\)$", res.stderr, re.M)
    assert re.search(r"^hpcray: wait: [0-2]/3 objects ready, \d s$", res.stderr, re.M)
    assert res.stderr.count("hpcray: get:") == 2, res.describe()     # the 1-ref get: none


def test_progress_off_shows_no_line(run_job):
    res = run_job("output/long_get.py", n=3, timeout=90, env={"HPCRAY_PROGRESS": "0"})
    res.assert_ok()
    assert "objects ready" not in res.stderr, res.describe()


# ---------------------------------------------------------------------- the same on Ray
def _ray_python():
    for python in (os.environ.get("RAY_PYTHON"), "/tmp/rayvenv/bin/python"):
        if python and os.path.exists(python):
            return python
    return None


def _on_ray(script):
    python = _ray_python()
    if python is None:
        pytest.skip("Ray is not installed (set RAY_PYTHON to a Python that has it)")
    env = dict(os.environ, RAY_MODULE="ray", PYTHONPATH=str(JOBS_DIR), RAY_COLOR_PREFIX="0",
               RAY_DEDUP_LOGS="1")
    done = subprocess.run([python, str(JOBS_DIR / script)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, done.stderr


def _named(entries):
    return [(name, text) for name, _, _, _, text in entries]


def _by_source(entries):
    """Each source's lines, in order (the order between processes is up to the OS, in Ray
    as here)."""
    lines = {}
    for name, text in _named(entries):
        lines.setdefault(name, []).append(text)
    return lines


def test_the_same_prints_on_ray(run_job):
    ray_out, ray_err = _on_ray("output/prints.py")
    res = run_job("output/prints.py", n=2, timeout=90)
    res.assert_ok()
    # (Ray writes its workers' lines from another thread than the driver's prints: a
    # driver line may land inside a worker's line there; that part is Ray's, not the line's)
    ray_out = re.sub(r"(?<=\S)RESULT \{[^\n]*\}", "", ray_out)
    assert _by_source(_prefixed(res.stdout)) == _by_source(_prefixed(ray_out))
    assert _by_source(_prefixed(res.stderr)) == _by_source(_prefixed(ray_err))


def test_the_same_folding_on_ray(run_job):
    ray_out, _ = _on_ray("output/dedup.py")
    printed, counted = _dedup_counts(ray_out)
    assert printed + counted == 100 and counted > 0, ray_out
    res = run_job("output/dedup.py", n=3, timeout=90)
    res.assert_ok()
    ours = [entry for entry in _prefixed(res.stdout) if "[repeated" in entry[4]]
    theirs = [entry for entry in _prefixed(ray_out) if "[repeated" in entry[4]]
    for entries in (ours, theirs):             # Ray's format: the latest line, the count
        assert entries and all(re.fullmatch(
            r"hello from task \d+ \[repeated \d+x across cluster\]( \(.*\))?", text)
            for _, _, _, _, text in entries), entries
        assert entries[0][0] == "same"


# ---------------------------------------------------------------------- no MPI
META_A = ("same", 11, 1, "h")
META_B = ("same", 22, 2, "h")


def test_the_deduplicator_folds_other_processes_lines_only():
    dedup = output.LogDeduplicator(window=5.0)
    assert dedup.deduplicate(META_A, ["step 1 done", "step 2 done"], 0.0) == [
        (META_A, "step 1 done", 0), (META_A, "step 2 done", 0)]   # one process: all shown
    assert dedup.deduplicate(META_B, ["step 3 done", "step 4 done"], 1.0) == []
    assert dedup.deduplicate(META_A, ["other text"], 2.0) == [(META_A, "other text", 0)]
    assert dedup.due() == 5.0
    assert dedup.expire(4.0) == []
    assert dedup.expire(5.0) == [(META_B, "step 4 done", 2)]     # the latest, counted
    assert dedup.deduplicate(META_B, ["step 5 done"], 6.0) == []  # aggregated again
    assert dedup.flush() == [(META_B, "step 5 done", 0)]          # one alone: as it is
    assert dedup.deduplicate(META_A, ["", "42"], 7.0) == [(META_A, "", 0), (META_A, "42", 0)]


class FakeStream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.fixture
def streams(monkeypatch):
    def make(tty):
        out, err = FakeStream(tty), FakeStream(tty)
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        return out, err
    return make


def _state(x, total=10, closed=False, uuid="u1", desc="load"):
    return {"x": x, "total": total, "desc": desc, "unit": "it", "pos": 0, "uuid": uuid,
            "closed": closed, "elapsed": 2.0}


def test_the_display_off_a_terminal_prints_plain_lines(streams):
    out, err = streams(False)
    display = output.Display()
    display.configure(dedup=False)
    display.lines(META_A, False, ["hello"], now=0.0)
    display.lines(META_A, True, ["oops"], now=0.0)
    assert out.getvalue() == "(same pid=11, rank=1, node=h) hello\n"
    assert err.getvalue() == "(same pid=11, rank=1, node=h) oops\n"
    display.bar(META_B, _state(1), now=10.0)
    display.bar(META_B, _state(5), now=12.0)
    assert "load" not in err.getvalue()                   # not yet: every 5 s at most
    assert display.due == 15.0
    display.tick(now=15.5)
    display.bar(META_B, _state(6), now=16.0)
    display.bar(META_B, _state(10, closed=True), now=17.0)
    lines = [line for line in err.getvalue().splitlines() if "load" in line]
    assert lines == ["(same pid=22, rank=2, node=h) load:  50%|##########          | 5/10 "
                     "[00:02<00:02, 2.50it/s]",
                     "(same pid=22, rank=2, node=h) load: 100%|####################| 10/10 "
                     "[00:02<00:00, 5.00it/s]"]
    display.wait_status("hpcray: get: 1/3 objects ready, 3 s")
    _clean(out.getvalue() + err.getvalue())


def test_the_display_on_a_terminal_redraws_in_place(streams):
    out, err = streams(True)
    display = output.Display()
    try:
        _redraws_in_place(display, out, err)
    finally:
        display.finish()                                   # (print() is print again)


def _redraws_in_place(display, out, err):
    display.bar(None, _state(3), now=0.0)
    drawn = err.getvalue()
    assert "load:  30%" in drawn and drawn.endswith("\x1b[1A\r")   # back over its line
    display.lines(META_A, False, ["hello"], now=0.0)
    assert err.getvalue()[len(drawn):].startswith("\r\x1b[J")      # cleared before the text
    assert out.getvalue() == f"{output.CYAN}(same pid=11, rank=1, node=h){output.RESET} hello\n"
    display.wait_status("hpcray: get: 1/3 objects ready, 3 s")
    assert err.getvalue().endswith("hpcray: get: 1/3 objects ready, 3 s\n\x1b[2A\r")
    display.wait_status("hpcray: get: 3/3 objects ready, 4 s (done)", final=True)
    assert err.getvalue().endswith("\x1b[1A\r")                    # the bar alone again
    display.bar(None, _state(10, closed=True), now=1.0)
    assert "load: 100%" in err.getvalue() and display.drawn == 0
    assert display.print_before is None                             # print() is print again


def test_the_capture_makes_lines_of_what_tasks_write(monkeypatch):
    class Spec:
        actor_id = None
        name = "__main__.outer.<locals>.f"
    running = []
    target = io.StringIO()
    settings = output.CaptureSettings(False, lambda: running[-1] if running else None)
    capture = output.Capture(target, False, settings)
    buffer = output.Buffer()
    monkeypatch.setattr(output, "buffer", buffer)
    capture.write("driver text\n")                        # not a task: passes through
    assert target.getvalue() == "driver text\n" and not buffer.pending
    running.append(Spec())
    capture.write("a")
    capture.write("b\nc\n")
    capture.write("\rtick 1\rtick 2")                     # redrawn in place: the last state
    capture.flush()                                       # (a redrawn line waits for its end)
    capture.write("\rtick 3\n")
    capture.write("no newline")
    capture.end_line()                                    # the task is over
    assert buffer.pending
    pid = os.getpid()
    assert buffer.take() == [(output.LINES, pid, "f", False,
                              ["ab", "c", "tick 3", "no newline"])]
    assert not capture.isatty()


def test_tqdm_ray_on_the_driver_alone(streams):
    out, err = streams(False)
    with tqdm_ray.tqdm(total=4, desc="steps", flush_interval_s=0) as bar:
        for _ in range(4):
            bar.update(1)
        assert bar.n == 4 and bar.total == 4
    assert list(tqdm_ray.tqdm(range(3), desc="iter")) == [0, 1, 2]
    text = err.getvalue()
    assert re.search(r"^steps: 100%\|#+\| 4/4 \[", text, re.M), text
    assert re.search(r"^iter: 100%\|#+\| 3/3 \[", text, re.M), text
    _clean(out.getvalue() + text)
    with pytest.raises(ValueError):
        list(tqdm_ray.tqdm(desc="nothing"))
    started = time.monotonic()
    tqdm_ray.safe_print("plain", file=io.StringIO())
    assert time.monotonic() - started < 1
