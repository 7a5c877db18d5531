"""Seeing a job (issue 14), in real jobs: Ray's state API and timeline, the job directory
(its files and their modes, the final report), ``hpcray status | list | summary`` on it while
the job runs and after it ended, the dashboard in a real browser, and a job directory that
cannot be made."""
import glob
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from test_dashboard_page import chromium, dom_of, parse_html, rows_of

NETWORK = {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp,self", "HPCRAY_RANKS_PER_NODE": "1"}


def _job_dir(cwd):
    found = glob.glob(os.path.join(str(cwd), "hpcray-*"))
    found = [path for path in found if os.path.isdir(path)]
    assert len(found) == 1, found
    return found[0]


def _hpcray(*argv, cwd=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "hpcray", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


@pytest.mark.parametrize("network", [False, True], ids=["shared-memory", "network"])
def test_state_api_and_timeline(run_job, tmp_path, network):
    result = run_job("observe/state_api.py", n=3, args=["network"] if network else [],
                     env=NETWORK if network else None, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.value("running_task_is_listed") == [["nap", "NORMAL_TASK", True]]
    squares = result.value("finished_squares")
    assert squares["count"] == 20 and squares["states"] == ["FINISHED"]
    assert squares["ranks"] and 0 not in squares["ranks"]      # ran on the worker ranks
    for field in ("task_id", "attempt_number", "name", "state", "type", "func_or_class_name",
                  "actor_id", "node_id", "worker_pid", "start_time_ms", "end_time_ms",
                  "error_type", "error_message"):
        assert field in squares["fields"], field
    assert result.value("failed_task") == {"name": "explode",
                                           "error_type": "TASK_EXECUTION_EXCEPTION",
                                           "has_traceback": True, "found_again": True}
    assert result.value("limit_is_respected") == 3
    summary = result.value("summary_of_tasks")
    assert summary["square"] == {"func_or_class_name": "square", "type": "NORMAL_TASK",
                                 "state_counts": {"FINISHED": 20}}
    assert summary["explode"] == {"FAILED": 1} and summary["incr"] == {"FINISHED": 5}
    assert summary["actor_tasks"] == 5 and summary["by"] == "func_name"
    assert result.value("actors") == {"name": "the_counter", "state": "ALIVE", "calls": 5,
                                      "has_pid": True, "summary": {"ALIVE": 1}}
    nodes = result.value("nodes_and_workers")
    assert nodes["nodes"] == (3 if network else 1) and nodes["heads"] == 1
    assert nodes["alive"] == ["ALIVE"] and nodes["driver"] is True
    assert nodes["worker_ranks"] == [1, 2]
    assert result.value("objects") == {"big_one": True, "driver_owned": True,
                                       "total_objects": True}
    assert result.value("restarts_retries_and_deaths") == {
        "new_process": True, "restarts": 1, "dead": [["Counter", True]],
        "retried": "second attempt", "attempt": 1}
    assert result.error("bad_filter")["type"] == "ValueError"
    assert result.value("everything_else_rays_state_api_has") == {
        "group": ["CREATED", 1, "the_group"], "jobs": [1, "RUNNING", True], "node": True,
        "worker": True, "object": True,
        "logs": ["rank-0.log", "rank-1.log", "rank-2.log"], "log_line": True,
        "case_insensitive": True}
    timeline = result.value("timeline")
    expected = {"actor_creation", "actor_task", "get", "task"} | (
        {"transfer"} if network else set())
    assert expected <= set(timeline["cats"]), timeline["cats"]
    assert timeline["square_spans"] == 20 and timeline["tracks_more_than_one"]
    assert "rank 1 (" in " ".join(timeline["rank_names"]) and timeline["returned"]
    assert timeline["sane"]

    # the job directory, after the job
    job_dir = _job_dir(tmp_path)
    assert f"hpcray: job directory {job_dir}" in result.stderr
    assert result.stderr.count("hpcray: job directory") == 1
    for path in [job_dir, os.path.join(job_dir, "logs")]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    for name in ("status.json", "status.js", "dashboard.html", "report.txt"):
        path = os.path.join(job_dir, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    snapshot = json.load(open(os.path.join(job_dir, "status.json")))
    assert snapshot["job"]["state"] == "FINISHED" and snapshot["job"]["exit_status"] == 0
    assert snapshot["job"]["ranks"] == 3 and "state_api.py" in snapshot["job"]["script"]
    assert "mpiexec" in snapshot["job"]["launch"] and snapshot["job"]["mode"] == "mpirun"
    by_function = {row["name"]: row for row in snapshot["tasks"]["by_function"]}
    assert by_function["explode"]["FAILED"] == 1 and by_function["Fragile.die"]["FAILED"] == 1
    assert snapshot["tasks"]["totals"]["FAILED"] == sum(row["FAILED"]
                                                        for row in by_function.values())
    assert by_function["square"]["FINISHED"] == 20 and by_function["nap"]["FINISHED"] == 1
    assert by_function["nap"]["max_seconds"] >= 3.9
    assert by_function["crash_once"]["RETRIED"] == 1
    assert by_function["crash_once"]["FINISHED"] == 1
    actors = {actor["name"] or actor["class_name"]: actor for actor in snapshot["actors"]}
    assert actors["Fragile"]["restarts"] == 1 and actors["the_counter"]["calls"] == 5
    assert actors["Counter"]["state"] == "DEAD" and actors["Counter"]["death_cause"]
    assert any(event["level"] == "ERROR" and "died" in event["message"]
               for event in snapshot["events"])                  # the crashes, as they came
    assert len(snapshot["ranks"]) == 3 and snapshot["series"]["t"]
    assert any(rank["worker_processes"] for rank in snapshot["ranks"])
    report = open(os.path.join(job_dir, "report.txt")).read()
    assert "FINISHED (exit status 0)" in report and "explode went wrong" in report

    # the command line, on the ended job's directory
    done = _hpcray("status", job_dir)
    assert done.returncode == 0 and "FINISHED" in done.stdout and "square" in done.stdout
    done = _hpcray("list", "tasks", job_dir, "--filter", "name=square", "--limit", "100",
                   "--format", "json")
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 20
    done = _hpcray("summary", "tasks", cwd=tmp_path)
    assert done.returncode == 0 and "square: FINISHED 20" in done.stdout, done
    done = _hpcray("list", "actors", job_dir)
    assert "the_counter" in done.stdout and "ALIVE" in done.stdout


def test_a_running_job_is_seen_from_outside_and_a_failed_one_says_so(start_job, tmp_path):
    job = start_job("observe/long_job.py", n=3)
    deadline = time.monotonic() + 60
    running = None
    while time.monotonic() < deadline and running is None:
        time.sleep(0.5)
        paths = glob.glob(str(tmp_path / "hpcray-*" / "status.json"))
        if paths:
            snapshot = json.load(open(paths[0]))
            if snapshot["tasks"]["totals"]["RUNNING"] >= 2:
                running = snapshot
    assert running is not None, "no snapshot showed the running tasks"
    assert running["job"]["state"] == "RUNNING" and running["job"]["exit_status"] is None
    job_dir = _job_dir(tmp_path)
    done = _hpcray("status", job_dir)
    assert done.returncode == 0 and "RUNNING" in done.stdout, done
    done = _hpcray("list", "tasks", job_dir, "--filter", "state=RUNNING")
    assert done.returncode == 0 and "snooze" in done.stdout, done
    browser = chromium() is not None
    if browser:                                # (the page of the running job, from disk)
        dom = dom_of(os.path.join(job_dir, "dashboard.html"))
        assert "snooze" in dom and "RUNNING" in dom
        rows = {row["Function"]: row
                for row in rows_of(parse_html(dom).find(id="tasks-by-function"))}
        assert rows["snooze"]["Running"] == "2" and rows["snooze"]["Finished"] == "4", rows
    result = job.wait(120)
    assert result.returncode == 1                      # the script raised at the end
    snapshot = json.load(open(os.path.join(job_dir, "status.json")))
    assert snapshot["job"]["state"] == "FAILED" and snapshot["job"]["exit_status"] == 1
    assert snapshot["tasks"]["totals"]["FINISHED"] >= 4
    done = _hpcray("status", job_dir)
    assert "FAILED (exit status 1)" in done.stdout
    if not browser:
        pytest.skip("Chromium is not installed: the page was not checked in a browser "
                    "(CI installs it)")
    root = parse_html(dom_of(os.path.join(job_dir, "dashboard.html")))   # the final report
    rows = {row["Function"]: row for row in rows_of(root.find(id="tasks-by-function"))}
    assert rows["snooze"]["Finished"] == "6" and rows["snooze"]["Running"] == "0", rows
    assert "FAILED" in root.find(id="job").text()
    spans = root.find("svg", id="timeline-plot").find_all("rect", cls="timeline-span")
    assert len(spans) >= 6


def test_embedded_job_writes_its_directory_too(run_job, tmp_path):
    result = run_job("observe/embedded_small.py", embedded=True, timeout=90)
    assert result.returncode == 0, result.stderr
    snapshot = json.load(open(os.path.join(_job_dir(tmp_path), "status.json")))
    assert snapshot["job"]["mode"] == "embedded" and snapshot["job"]["state"] == "FINISHED"
    by_function = {row["name"]: row for row in snapshot["tasks"]["by_function"]}
    assert by_function["double"]["FINISHED"] == 10
    assert result.value("tasks") == 10


def test_a_job_directory_that_cannot_be_made_warns_once_and_the_job_runs(run_job, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_job("observe/embedded_small.py", n=2,
                     env={"HPCRAY_JOB_DIR": str(blocker / "job")}, timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cannot create the job directory") == 1
    assert result.value("tasks") == 10
    assert not glob.glob(str(tmp_path / "hpcray-*"))
    off = run_job("observe/embedded_small.py", n=2, env={"HPCRAY_JOB_DIR": "off"},
                  timeout=90, name="off")
    assert off.returncode == 0 and "job directory" not in off.stderr
    assert not glob.glob(str(tmp_path / "hpcray-*"))


def test_the_state_api_right_after_the_work_shows_all_of_it(run_job):
    """Executors report every quarter of a second: a view asked right after the work waits
    for their reports (at most that long), as a script's last ``ray.timeline()`` needs."""
    result = run_job("observe/right_after.py", n=3, timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.value("spans_right_after") == 8
    assert result.value("finished_right_after") == 16
