"""The job directory's dashboard page (hpcray/jobdir/dashboard.html, written by
hpcray.jobdir.page), rendered by a real headless Chromium: a finished job's page with its
snapshot inlined, a running job's page that follows status.js, and a page with no snapshot.

``dom_of(path_or_url)`` runs Chromium on a page and returns its DOM after the scripts ran (the
end-to-end tests use it too); ``parse_html(text)`` makes a small tree of it to query. Chromium is
not a Python package: CI installs it (.ci/run, apt-get); without it these tests skip.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hpcray.jobdir import layout, page

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INJECTED = "<script>alert(1)</script>"
EVIL_FUNCTION = "evil<img src=x onerror=alert(2)>"


# ------------------------------------------------------------------------ Chromium
def chromium():
    """The Chromium (or Chrome) on PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(target, extra, budget_ms, timeout):
    binary = chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; CI's .ci/run does): "
                    "the dashboard page is checked in a real browser")
    url = target if "://" in str(target) else Path(target).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="hpcray-chromium-") as profile:
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-dev-shm-usage", "--disable-extensions", f"--user-data-dir={profile}",
                   f"--virtual-time-budget={budget_ms}", *extra, url]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Chromium did not finish {url} within {timeout} s")
    assert done.returncode == 0, f"Chromium failed on {url} (exit {done.returncode}):\n" \
                                 f"{done.stderr[-3000:]}"
    return done


def dom_of(path_or_url, budget_ms=5000, timeout=90):
    """The DOM (serialized HTML) of a page after ``budget_ms`` of the page's (virtual) time in
    headless Chromium: what its scripts made of it. Skips the test when there is no Chromium.
    """
    return _run_chromium(path_or_url, ["--dump-dom"], budget_ms, timeout).stdout


def screenshot(path_or_url, png, size=(1400, 2400), budget_ms=5000, timeout=90):
    """A PNG of the page (``size`` = window width, height) written to ``png``."""
    _run_chromium(path_or_url, [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
                                "--hide-scrollbars"], budget_ms, timeout)
    return png


# ------------------------------------------------------------------------ a small DOM
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    """An element of the parsed page: ``tag``, ``attrs`` (dict), ``children`` (Nodes and
    strings)."""

    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    @property
    def classes(self):
        return (self.attrs.get("class") or "").split()

    def text(self, skip=()):
        """The text in it; none from elements whose tag is in ``skip``."""
        return "".join(c if isinstance(c, str) else "" if c.tag in skip else c.text(skip)
                       for c in self.children)

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag=None, id=None, cls=None, **attrs):
        return [n for n in self.iter()
                if (tag is None or n.tag == tag) and (id is None or n.attrs.get("id") == id)
                and (cls is None or cls in n.classes)
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def find(self, tag=None, id=None, cls=None, **attrs):
        found = self.find_all(tag, id, cls, **attrs)
        return found[0] if found else None

    def __repr__(self):
        return f"<{self.tag} {self.attrs}>"


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#document", {})

    def handle_starttag(self, tag, attrs):
        child = Node(tag, attrs, self.node)
        self.node.children.append(child)
        if tag not in VOID:
            self.node = child

    def handle_startendtag(self, tag, attrs):
        self.node.children.append(Node(tag, attrs, self.node))

    def handle_endtag(self, tag):
        node = self.node
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.node = node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def parse_html(text):
    """The page as a tree of :class:`Node` (its root)."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def rows_of(table):
    """A table's body rows as dicts: column header -> cell text (not the plots' tooltips)."""
    headers = [th.text().strip() for th in table.find("thead").find_all("th")]
    return [dict(zip(headers, (td.text(skip=("svg",)).strip() for td in tr.find_all("td"))))
            for tr in table.find("tbody").find_all("tr")]


# ------------------------------------------------------------------------ sample snapshots
START = 1764671990.1
FUNCTIONS = [   # name, type, PENDING, RUNNING, FINISHED, FAILED, RETRIED, mean, max
    ("load_shard", "NORMAL_TASK", 0, 0, 40, 0, 0, 0.35, 1.2),
    ("train_step", "NORMAL_TASK", 0, 0, 120, 1, 1, 0.08, 2.5),
    ("Counter.__init__", "ACTOR_CREATION_TASK", 0, 0, 2, 0, 0, 0.01, 0.012),
    ("Counter.increment", "ACTOR_TASK", 0, 0, 30, 0, 0, 0.0004, 0.002),
    (EVIL_FUNCTION, "NORMAL_TASK", 0, 0, 3, 0, 0, 0.002, 0.003),
]
TRACKS = [(0, 5000), (1, 5001), (2, 5002), (3, 5003)]
TRACEBACK = ("Traceback (most recent call last):\n"
             '  File "train.py", line 42, in train_step\n'
             "    raise ValueError(batch)\n"
             f"ValueError: bad batch {INJECTED} </pre> & friends")


def _task(i, name, state="FINISHED", duration=0.1, rank=1, start=5.0, error=None,
          kind="NORMAL_TASK"):
    task = {"task_id": f"{i:032x}", "attempt_number": 0, "name": name, "state": state,
            "type": kind, "func_or_class_name": name, "actor_id": None,
            "node_id": "ab" * 28, "worker_pid": 5000 + rank, "rank": rank,
            "start_time_ms": (START + start) * 1000,
            "end_time_ms": None if state == "RUNNING" else (START + start + duration) * 1000,
            "duration_s": None if state == "RUNNING" else duration,
            "error_type": None, "error_message": None}
    if error:
        task.update(error_type="ValueError", error_message=error)
    return task


def sample_snapshot(state="FINISHED", written=None):
    """A whole snapshot as docs/job-directory.md describes it: 2 nodes, 4 ranks, 5 functions
    (one failed task whose traceback holds a <script>), 2 actors, 48 timeline spans on 4
    tracks (one failed), 120 objects, 3 events."""
    running = state == "RUNNING"
    samples = 43
    t = [float(i) for i in range(samples)]
    busy = [0 if i == 0 else min(4, i % 7 + 1) for i in range(samples)]
    cpu = {str(r): [0.0] + [90.0 + r * 2 + (i % 5) for i in range(1, samples)] for r in range(4)}
    rss = {str(r): [5e7 + r * 1e7 + i * 2e6 for i in range(samples)] for r in range(4)}
    functions = [{"name": name, "type": kind, "PENDING": p, "RUNNING": r, "FINISHED": f,
                  "FAILED": x, "RETRIED": rt, "total_seconds": mean * (f + x),
                  "mean_seconds": mean, "max_seconds": top}
                 for name, kind, p, r, f, x, rt, mean, top in FUNCTIONS]
    if running:
        functions[1].update(PENDING=3, RUNNING=2)
    totals = {key: sum(f[key] for f in functions)
              for key in ("PENDING", "RUNNING", "FINISHED", "FAILED", "RETRIED")}
    timeline = []
    for k in range(48):
        rank, pid = TRACKS[k % 4]
        timeline.append({"name": "train_step" if k % 3 else "load_shard",
                         "cat": "task" if k % 5 else "actor_task", "rank": rank, "pid": pid,
                         "t": 0.5 + (k // 4) * 3.2 + rank * 0.1, "dur": 0.4 + (k % 7) * 0.3,
                         "ok": k != 17})
    timeline.append({"name": "get", "cat": "get", "rank": 0, "pid": 5000, "t": 40.0,
                     "dur": 1.0, "ok": True})
    timeline.append({"name": "ray.put", "cat": "transfer", "rank": 1, "pid": 5001, "t": 39.0,
                     "dur": 0.5, "ok": True})
    slowest = [_task(100 + i, "train_step", duration=2.5 - i * 0.2, rank=i % 4, start=3.0 * i)
               for i in range(10)]
    failed = [_task(999, "train_step", state="FAILED", duration=0.2, rank=2, start=17.0,
                    error=TRACEBACK)]
    recent = slowest + failed
    if running:
        recent = [_task(500 + i, "train_step", state="RUNNING", rank=i + 1, start=40.0)
                  for i in range(2)] + recent
    objects = [{"object_id": f"{i:040x}", "object_size": 800 + i * 1000, "rank": i % 4,
                "node_id": ("ab" if i % 4 < 2 else "cd") * 28, "reference_type": "LOCAL_REFERENCE",
                "type": "DRIVER" if i % 2 else "WORKER", "task_status": "FINISHED"}
               for i in range(120)]
    return {
        "version": 1,
        "written": written if written is not None else START + 42.5,
        "job": {"id": "20261202-113907-4242", "script": "train.py",
                "argv": ["train.py", "--epochs", "3"],
                "launch": "mpirun -n 4 python -m hpcray train.py", "mode": "mpirun",
                "ranks": 4, "nodes": 2, "head_host": "n001", "start_time": START,
                "elapsed": 42.5, "state": state, "exit_status": None if running else 0,
                "job_dir": "/home/u/hpcray-20261202-113907-4242"},
        "nodes": [{"node_id": ("ab" if n == 0 else "cd") * 28, "index": n,
                   "host": f"n00{n + 1}", "ip": f"10.0.0.{n + 1}", "ranks": [2 * n, 2 * n + 1],
                   "alive": True, "resources": {"CPU": 2.0, "GPU": n, "memory": 25769803776},
                   "store": {"capacity": 7730941132, "used": 104857600 * (n + 1),
                             "objects": 60, "spilled_bytes": 0 if n == 0 else 1048576}}
                  for n in range(2)],
        "ranks": [{"rank": r, "node": r // 2, "host": f"n00{r // 2 + 1}", "pid": 4242 + r,
                   "alive": r != 3 or running, "role": "head" if r == 0 else "worker",
                   "resources": {"CPU": 1.0, "GPU": r // 2, "memory": 6442450944},
                   "worker_processes": 1, "busy": 1 if running else 0,
                   "cpu_percent": 97.0 - r, "rss": 123456789 + r * 1000000,
                   "tasks_run": 50 + r} for r in range(4)],
        "series": {"t": t, "busy": busy, "cpu": cpu, "rss": rss,
                   "store_used": {"0": [i * 2e6 for i in range(samples)],
                                  "1": [i * 4e6 for i in range(samples)]}},
        "tasks": {"totals": totals, "by_function": functions,
                  "durations": {"bounds": [0.0001, 0.001, 0.01, 0.1, 1, 10, 100],
                                "counts": [0, 31, 5, 40, 110, 9, 0, 0]},
                  "slowest": slowest, "failed": failed, "recent": recent},
        "actors": [{"actor_id": "a1" * 16, "class_name": "Counter", "name": "c1",
                    "namespace": "", "rank": 2, "node_id": "cd" * 28, "pid": 5002,
                    "state": "ALIVE", "calls": 20, "restarts": 0, "death_cause": ""},
                   {"actor_id": "a2" * 16, "class_name": "Counter", "name": "",
                    "namespace": "", "rank": 3, "node_id": "cd" * 28, "pid": 5003,
                    "state": "DEAD", "calls": 10, "restarts": 1,
                    "death_cause": "the actor's rank 3 died"}],
        "objects": {"count": 120, "bytes": sum(o["object_size"] for o in objects),
                    "spilled_bytes": 1048576, "list": objects},
        "workers": [{"worker_id": f"{pid:032x}", "rank": rank, "pid": pid, "alive": True,
                     "worker_type": "WORKER", "node_id": "ab" * 28, "tasks_run": 12}
                    for rank, pid in TRACKS],
        "timeline": timeline,
        "events": [{"time": START + 17.2, "level": "ERROR", "rank": 2,
                    "message": f"task train_step failed: ValueError: bad batch {INJECTED}"},
                   {"time": START + 3.0, "level": "WARNING", "rank": 1,
                    "message": "object store 80% full on n001"},
                   {"time": START + 30.0, "level": "INFO", "rank": 0,
                    "message": "rank 3 ended"}],
    }


# ------------------------------------------------------------------------ the tests
def test_render_inlines_the_snapshot_safely(tmp_path):
    snapshot = sample_snapshot()
    text = page.render(snapshot)
    assert page.PLACEHOLDER not in text
    assert "</script>alert" not in text and INJECTED not in text    # "</" is escaped
    assert page.render(None) == page.template() and page.PLACEHOLDER in page.template()
    assert "<!--<script" not in page.inline_json({"x": "<!--<script>"})
    path = page.write(str(tmp_path), snapshot)
    assert path == str(tmp_path / layout.DASHBOARD)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_the_page_needs_no_network():
    """Everything is inline: the only URL is SVG's namespace, the only file it loads
    status.js, the only links anchors in the page."""
    text = page.template()
    assert set(re.findall(r"\w+://[\w.-]+[^\s\"'<>)]*", text)) == {"http://www.w3.org/2000/svg"}
    assert set(re.findall(r"\bsrc\s*=\s*[\"']?([^\"'\s>]*)", text)) == {"status.js?t="}
    assert {href for href in re.findall(r'href="([^"]*)"', text)
            if not href.startswith("#")} == set()
    assert "<link" not in text and "@import" not in text and "XMLHttpRequest" not in text
    assert not re.search(r"\bfetch\((?!\))", text)
    assert '"status.js?t="' in text


def test_a_finished_jobs_page_shows_its_inline_snapshot(tmp_path):
    snapshot = sample_snapshot()
    page.write(str(tmp_path), snapshot)
    assert not (tmp_path / layout.STATUS_JS).exists()
    dom = dom_of(tmp_path / layout.DASHBOARD)
    root = parse_html(dom)

    assert root.find(id="waiting").attrs.get("hidden") is not None
    assert root.find(id="sections").attrs.get("hidden") is None
    assert not root.find_all("p", cls="error"), [p.text() for p in root.find_all("p", cls="error")]
    job = root.find(id="job")
    assert "train.py" in job.text() and "mpirun -n 4 python -m hpcray train.py" in job.text()
    state = job.find(cls="s-FINISHED")
    assert state is not None and state.text() == "FINISHED"
    assert "42.5 s" in job.text()

    # tasks by function: a row per function with its counts
    rows = {row["Function"]: row for row in rows_of(root.find(id="tasks-by-function"))}
    assert set(rows) == {f[0] for f in FUNCTIONS}
    for name, _, pending, running, finished, failed, retried, _, _ in FUNCTIONS:
        assert (rows[name]["Pending"], rows[name]["Running"], rows[name]["Finished"],
                rows[name]["Failed"], rows[name]["Retried"]) == \
            tuple(str(n) for n in (pending, running, finished, failed, retried)), rows[name]
    assert rows["train_step"]["Mean"] == "80 ms" and rows["train_step"]["Max"] == "2.5 s"
    totals = {n.attrs["data-state"]: n.find(cls="n").text()
              for n in root.find(id="task-totals").find_all(cls="total")}
    assert totals == {"PENDING": "0", "RUNNING": "0", "FINISHED": "195", "FAILED": "1",
                      "RETRIED": "1"}
    assert root.find("img") is None                   # the function's name stayed text
    assert EVIL_FUNCTION.replace("<", "&lt;").replace(">", "&gt;") in dom

    # plots
    bars = root.find("svg", id="duration-histogram").find_all("rect", cls="hist-bar")
    assert [b.attrs["data-count"] for b in bars] == ["0", "31", "5", "40", "110", "9", "0", "0"]
    utilisation = root.find("svg", id="utilisation-plot")
    assert utilisation.find("path", cls="plot-area") is not None
    assert utilisation.find("path", cls="plot-line").attrs["d"].count("L") == 42
    assert len(root.find("svg", id="cpu-plot").find_all("path", cls="plot-line")) == 4
    assert len(root.find(id="ranks").find_all("svg", cls="sparkline")) == 8   # CPU and RSS

    # timeline: one element per span, on 4 tracks, the failed one marked
    spans = root.find("svg", id="timeline-plot").find_all("rect", cls="timeline-span")
    assert len(spans) == len(snapshot["timeline"]) == 50
    assert len([s for s in spans if "failed" in s.classes]) == 1
    assert len(root.find(id="timeline").find_all("text", cls="track-label")) == 4
    assert all(s.find("title") is not None for s in spans)

    # the failed task: its traceback as text, the injected tag escaped
    failed = root.find(id="failed-tasks")
    tasks = failed.find_all("details", cls="failed-task")
    assert len(tasks) == 1
    assert tasks[0].find("pre", cls="traceback").text() == TRACEBACK
    assert INJECTED not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert not [s for s in root.find_all("script") if s.text().strip() == "alert(1)"]

    # nodes, ranks, actors, objects, events
    assert [r["Host, IP"] for r in rows_of(root.find(id="nodes-table"))] == ["n001 10.0.0.1",
                                                                        "n002 10.0.0.2"]
    ranks = rows_of(root.find(id="ranks-table"))
    assert [r["Rank"] for r in ranks] == ["0", "1", "2", "3"]
    assert [r["State"] for r in ranks] == ["alive", "alive", "alive", "dead"]
    assert ranks[0]["RSS now"] == "117.7 MiB" and ranks[0]["CPU now"] == "97 %"
    actors = rows_of(root.find(id="actors-table"))
    assert [(a["Class"], a["Name"], a["State"], a["Calls served"]) for a in actors] == \
        [("Counter", "c1", "ALIVE", "20"), ("Counter", "–", "DEAD", "10")]
    assert actors[1]["Death cause"] == "the actor's rank 3 died"
    assert len(root.find(id="objects-list").find_all("tr", cls="object-row")) == 100
    assert "120" in root.find(id="objects-summary").text()
    events = rows_of(root.find(id="events-table"))
    assert [e["Level"] for e in events] == ["WARNING", "ERROR", "INFO"]   # as they happened
    assert INJECTED in events[1]["Message"]
    assert "Final snapshot" in root.find(id="status-line").text()


def test_a_running_jobs_page_follows_status_js(tmp_path):
    page.write(str(tmp_path))                          # as the head writes it at the start
    snapshot = sample_snapshot("RUNNING", written=time.time())
    layout.write_snapshot(str(tmp_path), snapshot)
    root = parse_html(dom_of(tmp_path / layout.DASHBOARD))
    assert root.find(id="waiting").attrs.get("hidden") is not None
    assert root.find(id="job").find(cls="s-RUNNING").text() == "RUNNING"
    assert "(running)" in root.find(id="job").text()
    rows = {row["Function"]: row for row in rows_of(root.find(id="tasks-by-function"))}
    assert (rows["train_step"]["Pending"], rows["train_step"]["Running"]) == ("3", "2")
    assert len(root.find(id="running-tasks").find_all("tr", cls="task-row")) == 2
    assert len(root.find_all("rect", cls="timeline-span")) == 50
    assert "Live" in root.find(id="status-line").text()
    assert not root.find_all("script", src=True) or \
        all("status.js" not in s.attrs.get("src", "") for s in root.find_all("script"))


def test_a_running_inline_snapshot_gives_way_to_a_newer_status_js(tmp_path):
    """A page written with a RUNNING snapshot keeps loading status.js, and shows the newer one
    there (here the job's end)."""
    page.write(str(tmp_path), sample_snapshot("RUNNING", written=START + 20))
    layout.write_snapshot(str(tmp_path), sample_snapshot("FINISHED", written=START + 42.5))
    root = parse_html(dom_of(tmp_path / layout.DASHBOARD))
    assert root.find(id="job").find(cls="s-FINISHED").text() == "FINISHED"


def test_a_broken_status_js_keeps_the_last_render(tmp_path):
    page.write(str(tmp_path), sample_snapshot("RUNNING", written=time.time()))
    (tmp_path / layout.STATUS_JS).write_text("hpcrayStatus({\"job\": ")   # cut off
    root = parse_html(dom_of(tmp_path / layout.DASHBOARD))
    assert root.find(id="job").find(cls="s-RUNNING").text() == "RUNNING"
    assert len(root.find_all("tr", cls="function-row")) == len(FUNCTIONS)
    assert "failed" in root.find(id="status-line").text()


def test_a_page_without_a_snapshot_waits_for_one(tmp_path):
    page.write(str(tmp_path))
    root = parse_html(dom_of(tmp_path / layout.DASHBOARD, budget_ms=3000))
    waiting = root.find(id="waiting")
    assert waiting.attrs.get("hidden") is None
    assert "waiting for the job's first snapshot" in " ".join(waiting.text().split()).lower()
    assert root.find(id="sections").attrs.get("hidden") is not None
    assert not root.find_all("tr", cls="function-row")


def test_missing_fields_do_not_break_the_page(tmp_path):
    """A snapshot with most fields gone, or of the wrong type, still shows what it has."""
    snapshot = {"job": {"id": "x", "state": "FINISHED", "script": "s.py"},
                "nodes": [{}], "ranks": [{"rank": 0}, None, 5], "series": {"t": [0, 1]},
                "tasks": {"by_function": [{"name": "f"}], "failed": [{}],
                          "durations": {"counts": "nope"}},
                "actors": "none", "timeline": [{"t": 1}, {"name": "no t"}],
                "objects": None, "events": [{}]}
    page.write(str(tmp_path), snapshot)
    dom = dom_of(tmp_path / layout.DASHBOARD)
    root = parse_html(dom)
    assert not root.find_all("p", cls="error"), [p.text() for p in root.find_all("p", cls="error")]
    assert root.find(id="job").find(cls="s-FINISHED") is not None
    assert [r["Function"] for r in rows_of(root.find(id="tasks-by-function"))] == ["f"]
    assert len(root.find_all("rect", cls="timeline-span")) == 1


def test_the_sample_page_screenshot(tmp_path):
    """A picture of the finished sample page (for a person to look at: $HPCRAY_DASHBOARD_PNG,
    else in the test's tmp_path); it checks only that one was made."""
    page.write(str(tmp_path), sample_snapshot())
    png = os.environ.get("HPCRAY_DASHBOARD_PNG") or str(tmp_path / "dashboard.png")
    screenshot(tmp_path / layout.DASHBOARD, png)
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
