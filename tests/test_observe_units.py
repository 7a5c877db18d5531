"""Seeing the job, without MPI: the head's JobTable (events from many ranks, in any order),
the views of a snapshot (Ray's filters and summaries, ``hpcray status``), the job
directory's files, and the ``hpcray status | list | summary | dashboard`` commands on paths
that are not job directories or hold a half-written snapshot."""
import json
import os
import pickle
import stat
import subprocess
import sys
import time

import pytest

from hpcray.core import events as ev
from hpcray.head.observer import JobTable
from hpcray.jobdir import commands, layout, views
from hpcray.wire import objects, serialization
from hpcray.wire.specs import TaskSpec


def _spec(task_id, name="mod.f", actor_id=None):
    return TaskSpec(task_id, 0, name, b"f", None, None, (), 1, {"CPU": 1.0}, 0, False, True, 0,
                    actor_id=actor_id)


def _error_results(task_id):
    try:
        raise ValueError("boom")
    except ValueError as raised:
        error = serialization.error_object(raised, "mod.f", "rank 1")
    return [(task_id, error)]


def _log():
    """A rank's log that reports unfinished work at once (a rank waits a second first)."""
    log = ev.EventLog()
    log.report_pending_after = 0.0
    return log


def _table(size=3, kept=100):
    return JobTable(size, lambda rank: f"node-of-{rank}", spans_per_rank=50, tasks_kept=kept)


def test_a_task_goes_pending_running_finished_whatever_order_its_events_arrive_in():
    owner, executor = _log(), _log()
    spec = _spec(7)
    owner.submitted(spec)
    executor.began(spec, pid=4242)
    executor.ended(spec, [(7, objects.value(b"x"))])
    owner.finished(spec, [(7, objects.value(b"x"))])
    in_order, reversed_ = _table(), _table()
    in_order.merge(0, owner.take(0))
    in_order.merge(1, executor.take(0))
    assert in_order.totals()["FINISHED"] == 1
    # the executor's report first, then the owner's: never counted twice, never back
    owner2, executor2 = _log(), _log()
    owner2.submitted(spec)
    executor2.began(spec, pid=4242)
    executor2.ended(spec, [(7, objects.value(b"x"))])
    owner2.finished(spec, [(7, objects.value(b"x"))])
    reversed_.merge(1, executor2.take(0))
    reversed_.merge(0, owner2.take(0))
    totals = reversed_.totals()
    assert totals == {"PENDING": 0, "RUNNING": 0, "FINISHED": 1, "FAILED": 0, "RETRIED": 0}
    record = reversed_.task_records()[0]
    assert record["name"] == "f" and record["state"] == "FINISHED"     # Ray's short name
    assert record["worker_pid"] == 4242 and record["rank"] == 1
    assert record["node_id"] == "node-of-1" and record["duration_s"] >= 0
    assert record["type"] == "NORMAL_TASK" and record["task_id"] == f"{7:016x}"


def test_running_and_pending_counts_then_a_failure_with_its_traceback():
    table = _table()
    owner, executor = _log(), _log()
    specs = [_spec(i) for i in range(1, 4)]
    for spec in specs:
        owner.submitted(spec)
    executor.began(specs[0], pid=1)
    table.merge(0, owner.take(0))
    table.merge(2, executor.take(0))
    assert table.totals()["PENDING"] == 2 and table.totals()["RUNNING"] == 1
    running = views.select(table.task_records(), [("state", "=", "RUNNING")])
    assert [r["task_id"] for r in running] == [f"{1:016x}"]
    executor.ended(specs[0], _error_results(1))
    table.merge(2, executor.take(0))
    assert table.totals()["RUNNING"] == 1              # its owner says when it is over
    owner.finished(specs[0], _error_results(1))
    table.merge(0, owner.take(0))
    failed = table.tasks_view(10)["failed"]
    assert len(failed) == 1 and failed[0]["error_type"] == "TASK_EXECUTION_EXCEPTION"
    assert "ValueError: boom" in failed[0]["error_message"]
    assert "Traceback" in failed[0]["error_message"]
    assert table.totals()["FAILED"] == 1
    # unfinished tasks are listed first
    assert [r["state"] for r in table.task_records()][:2] == ["PENDING_NODE_ASSIGNMENT"] * 2


def test_a_task_its_owner_saw_end_is_not_running_whatever_its_executor_said_last():
    """An executor reports what runs every quarter of a second: between two reports, work
    that ended (its owner said so) must not be listed as running, nor counted twice."""
    table = _table()
    owner, executor = _log(), _log()
    spec = _spec(9, name="mod.square")
    owner.submitted(spec)
    executor.began(spec, pid=5)
    table.merge(0, owner.take(0))
    table.merge(1, executor.take(0))                   # RUNNING [9]
    assert [r["state"] for r in table.task_records()] == ["RUNNING"]
    owner.finished(spec, [(9, objects.value(b"x"))])
    table.merge(0, owner.take(0))                      # the executor's next report: later
    assert [r["state"] for r in table.task_records()] == ["FINISHED"]
    row = next(row for row in table.by_function() if row["name"] == "square")
    assert row["RUNNING"] == 0 and row["FINISHED"] == 1 and row["PENDING"] == 0


def test_calls_queued_behind_their_actors_running_call_wait_and_run_in_turn():
    """A plain actor's calls are handed to its process ahead of time and run one at a time:
    only the oldest runs (Ray: the others wait, PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY),
    and each one's span starts when the one before it ended."""
    table = _table()
    owner, executor = _log(), _log()
    calls = [_spec(20 + i, name="A.slow", actor_id=5) for i in range(3)]
    for call in calls:
        owner.submitted(call)
        executor.began(call, pid=6, one_at_a_time=True)
    table.merge(0, owner.take(0))
    table.merge(1, executor.take(0))
    states = sorted(r["state"] for r in table.task_records())
    assert states == ["PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY"] * 2 + ["RUNNING"], states
    row = next(row for row in table.by_function() if row["name"] == "A.slow")
    assert row["RUNNING"] == 1 and row["PENDING"] == 2
    time.sleep(0.02)
    executor.ended(calls[0], [(20, objects.value(b"x"))])
    first_end = executor.ended_since[-1][6]
    time.sleep(0.02)
    executor.ended(calls[1], [(21, objects.value(b"x"))])
    second = executor.ended_since[-1]
    assert second[5] == first_end                     # it started when the first ended
    running = executor.take(0)[-1]
    assert running[0] == ev.RUNNING and [entry[0] for entry in running[1]] == [22]
    assert running[1][0][4] == second[6]              # the third runs since the second ended
    executor.actor_over(5)
    assert not executor.one_at_a_time and not executor.last_end


def test_a_view_waits_for_the_reports_of_work_just_got_back_and_no_longer():
    log = _log()
    assert log.unreported_for(time.time()) == 0.0          # nothing came back: no wait
    spec = _spec(30)
    log.submitted(spec)
    log.finished(spec, [(30, objects.value(b"x"))])
    now = time.time()
    assert 0.0 < log.unreported_for(now) <= ev.REPORTED_WITHIN
    assert log.unreported_for(now + ev.REPORTED_WITHIN) == 0.0
    assert ev.EventLog(enabled=False).unreported_for(now) == 0.0


def test_retries_count_and_the_attempt_number_grows():
    table = _table()
    owner = _log()
    spec = _spec(9)
    owner.submitted(spec)
    owner.retried(spec, "rank 2 died")
    owner.finished(spec, [(9, objects.value(b"x"))])
    table.merge(0, owner.take(0))
    assert table.totals()["RETRIED"] == 1 and table.totals()["FINISHED"] == 1
    assert table.task_records()[0]["attempt_number"] == 1
    assert "rank 2 died" in table.notes[-1]["message"]


def test_memory_is_bounded_but_the_aggregates_count_everything():
    table = _table(kept=10)
    owner, executor = _log(), _log()
    for task_id in range(1, 101):
        spec = _spec(task_id)
        owner.submitted(spec)
        executor.began(spec, pid=5)
        executor.ended(spec, [(task_id, objects.value(b"x"))])
        owner.finished(spec, [(task_id, objects.value(b"x"))])
    table.merge(1, executor.take(0))
    table.merge(0, owner.take(0))
    assert table.totals()["FINISHED"] == 100
    assert len(table.ended) <= 10 and len(table.executed) <= 10
    assert len(table.spans[1]) == 50                     # the ring of rank 1
    assert sum(table.tasks_view(5)["durations"]["counts"]) == 100
    assert table.totals()["PENDING"] == 0 and table.totals()["RUNNING"] == 0
    # short tasks travel added up: what a rank sends is bounded whatever the task rate
    for task_id in range(101, 5101):
        spec = _spec(task_id)
        owner.submitted(spec)
        executor.began(spec, pid=5)
        executor.ended(spec, [(task_id, objects.value(b"x"))])
        owner.finished(spec, [(task_id, objects.value(b"x"))])
    sent = owner.take(0) + executor.take(0)
    assert len(pickle.dumps(sent)) < 100_000
    table.merge(0, sent)
    assert table.totals()["FINISHED"] == 5100


def test_actor_calls_transfers_gets_and_the_chrome_trace():
    table = _table()
    executor = _log()
    actor = _spec(20, name="Counter.__init__", actor_id=20)
    call = _spec(21, name="Counter.incr", actor_id=20)
    executor.began(actor, pid=77)
    executor.ended(actor, [(20, objects.value(b"x"))])
    executor.began(call, pid=77)
    executor.ended(call, [(21, objects.value(b"x"))])
    executor.transfer(5, 100 << 20, 0, 1, time.time() - 0.05)
    executor.waited(3, time.time() - 0.01, pid=77)
    table.merge(1, executor.take(0))
    assert table.calls[20] == 1 and table.actor_pids[20] == (1, 77)
    cats = sorted(span["cat"] for span in table.spans_view())
    assert cats == ["actor_creation", "actor_task", "get", "transfer"]
    trace = table.trace_events(["h0", "h1", "h2"])
    json.dumps(trace)                                      # loadable JSON
    complete = [event for event in trace if event["ph"] == "X"]
    assert len(complete) == 4 and all(event["pid"] == 1 for event in complete)
    names = {event["args"]["name"] for event in trace if event["ph"] == "M"
             and event["name"] == "process_name"}
    assert names == {"rank 1 (h1)"}
    summary = table.by_function()
    assert {(row["name"], row["type"]) for row in summary} == {
        ("Counter.__init__", "ACTOR_CREATION_TASK"), ("Counter.incr", "ACTOR_TASK")}
    owner = _log()
    owner.finished(actor, [(20, objects.value(b"x"))])
    table.merge(0, owner.take(0))
    records = {record["name"]: record for record in table.task_records()}
    assert records["Counter.__init__"]["func_or_class_name"] == "Counter"
    assert records["Counter.__init__"]["worker_pid"] == 77


def test_recording_off_records_nothing():
    log = ev.EventLog(enabled=False)
    spec = _spec(1)
    log.submitted(spec)
    log.began(spec)
    log.ended(spec, [])
    log.note("WARNING", "x")
    assert log.pending == [] and log.begun == {}


# ---------------------------------------------------------------------- views
SNAPSHOT = {
    "job": {"id": "42", "script": "s.py", "argv": ["s.py"], "launch": "mpirun -n 3 x",
            "mode": "mpirun", "ranks": 3, "nodes": 1, "head_host": "h", "start_time": 1.0,
            "elapsed": 5.0, "state": "FINISHED", "exit_status": 0, "job_dir": "/x"},
    "written": 6.0,
    "nodes": [{"node_id": "n0", "index": 0, "host": "h", "ip": "10.0.0.1",
               "ranks": [0, 1, 2], "alive": True, "resources": {"CPU": 2.0},
               "store": {"capacity": 1 << 30, "used": 1 << 20, "spilled_bytes": 0}}],
    "ranks": [{"rank": r, "host": "h", "pid": 100 + r, "role": "worker", "alive": True,
               "cpu_percent": 1.0, "rss": 1 << 20, "worker_processes": 1, "busy": 0,
               "tasks_run": 3} for r in range(3)],
    "tasks": {"totals": {"PENDING": 1, "RUNNING": 0, "FINISHED": 3, "FAILED": 1,
                         "RETRIED": 0},
              "by_function": [{"name": "f", "type": "NORMAL_TASK", "PENDING": 1,
                               "RUNNING": 0, "FINISHED": 3, "FAILED": 1, "RETRIED": 0,
                               "mean_seconds": 0.1, "max_seconds": 0.2},
                              {"name": "A.m", "type": "ACTOR_TASK", "PENDING": 0,
                               "RUNNING": 0, "FINISHED": 2, "FAILED": 0, "RETRIED": 0}],
              "failed": [{"name": "f", "task_id": "01", "rank": 1,
                          "error_type": "TASK_EXECUTION_EXCEPTION",
                          "error_message": "Traceback...\nValueError: boom"}],
              "recent": [{"task_id": "01", "name": "f", "state": "FAILED", "rank": 1},
                         {"task_id": "02", "name": "f", "state": "FINISHED", "rank": 2},
                         {"task_id": "03", "name": "g", "state": "FINISHED", "rank": 2,
                          "duration_s": 2.5}]},
    "actors": [{"actor_id": "0a", "class_name": "A", "state": "ALIVE", "name": "a"},
               {"actor_id": "0b", "class_name": "A", "state": "DEAD", "name": ""}],
    "objects": {"count": 2, "bytes": 3 << 20, "spilled_bytes": 0,
                "list": [{"object_id": "05", "object_size": 1 << 20,
                          "reference_type": "LOCAL_REFERENCE", "task_status": "FINISHED"},
                         {"object_id": "06", "object_size": 2 << 20,
                          "reference_type": "LOCAL_REFERENCE", "task_status": "FINISHED"}]},
    "workers": [{"worker_id": "w", "rank": 1, "pid": 7, "worker_type": "WORKER",
                 "is_alive": True}],
    "events": [{"time": 2.0, "level": "WARNING", "rank": 1, "message": "careful"}],
}


def test_filters_as_ray_takes_them():
    tasks = views.records(SNAPSHOT, "tasks")
    assert [t["task_id"] for t in views.select(tasks, [("state", "=", "FINISHED")])] == \
        ["02", "03"]
    assert [t["task_id"] for t in views.select(tasks, [("state", "!=", "FINISHED"),
                                                       ("name", "=", "f")])] == ["01"]
    assert [t["task_id"] for t in views.select(tasks, [("duration_s", ">", "1")])] == ["03"]
    assert len(views.select(tasks, None, limit=1)) == 1
    with pytest.raises(ValueError, match="predicate"):
        views.select(tasks, [("state", "~", "x")])
    with pytest.raises(ValueError, match="key, predicate, value"):
        views.select(tasks, ["state=RUNNING"])
    assert views.parse_filter("state!=RUNNING") == ("state", "!=", "RUNNING")
    with pytest.raises(ValueError):
        views.parse_filter("nothing")
    nodes = views.records(SNAPSHOT, "nodes")
    assert nodes[0]["is_head_node"] and nodes[0]["node_ip"] == "10.0.0.1"


def test_summaries_have_rays_shape():
    tasks = views.summary(SNAPSHOT, "tasks")["cluster"]
    assert tasks["summary"]["f"]["state_counts"] == {"PENDING_NODE_ASSIGNMENT": 1,
                                                     "FINISHED": 3, "FAILED": 1}
    assert tasks["total_tasks"] == 5 and tasks["total_actor_tasks"] == 2
    actors = views.summary(SNAPSHOT, "actors")["cluster"]
    assert actors["summary"]["A"]["state_counts"] == {"ALIVE": 1, "DEAD": 1}
    assert actors["total_actors"] == 2
    objects_ = views.summary(SNAPSHOT, "objects")["cluster"]
    assert objects_["total_objects"] == 2 and objects_["total_size_mb"] == 3.0


def test_status_text_says_what_the_job_did():
    text = views.status_text(SNAPSHOT, now=7.0)
    assert "FINISHED (exit status 0)" in text and "mpirun -n 3 x" in text
    assert "ValueError: boom" in text and "careful" in text
    assert "1 pending, 0 running, 3 finished, 1 failed" in text
    stale = dict(SNAPSHOT, job=dict(SNAPSHOT["job"], state="RUNNING"))
    assert "may have been killed" in views.status_text(stale, now=100.0)


# ---------------------------------------------------------------------- the directory
def test_files_are_the_users_alone(tmp_path):
    job_dir = layout.create(tmp_path / "hpcray-1")
    layout.write_snapshot(job_dir, SNAPSHOT)
    for path in (job_dir, os.path.join(job_dir, "logs")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    for name in ("status.json", "status.js"):
        assert stat.S_IMODE(os.stat(os.path.join(job_dir, name)).st_mode) == 0o600
    assert layout.read_snapshot(job_dir)["job"]["id"] == "42"
    assert open(os.path.join(job_dir, "status.js")).read().startswith("hpcrayStatus({")


def _command(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "hpcray", *argv], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_commands_on_bad_paths_say_so_in_one_line(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for argv in (["status", str(plain)], ["list", "tasks", str(tmp_path / "missing")],
                 ["summary", "tasks", str(plain)], ["dashboard", "--print", str(plain)]):
        done = _command(*argv)
        assert done.returncode == 2, done
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _command("status", cwd=empty)
    assert done.returncode == 2 and "no job directory" in done.stderr


def test_commands_on_a_half_written_snapshot_and_a_good_one(tmp_path):
    job_dir = layout.create(tmp_path / "hpcray-2")
    with open(os.path.join(job_dir, "status.json"), "w") as handle:
        handle.write('{"job": {"id": "2", "sta')           # cut off mid-write
    done = _command("status", job_dir)
    assert done.returncode == 2 and "half-written" in done.stderr
    assert "Traceback" not in done.stderr
    layout.write_snapshot(job_dir, SNAPSHOT)
    done = _command("status", cwd=tmp_path)                # the newest hpcray-* here
    assert done.returncode == 0 and "FINISHED" in done.stdout, done
    done = _command("list", "tasks", job_dir, "--filter", "state=FINISHED", "--format",
                    "json")
    assert [t["task_id"] for t in json.loads(done.stdout)] == ["02", "03"]
    done = _command("summary", "actors", job_dir)
    assert "A: ALIVE 1, DEAD 1" in done.stdout
    done = _command("list", "tasks", job_dir, "--filter", "oops")
    assert done.returncode == 2 and "bad filter" in done.stderr
    done = _command("dashboard", "--print", job_dir)
    assert done.returncode == 0 and done.stdout.strip().endswith("dashboard.html")
    assert os.path.exists(os.path.join(job_dir, "dashboard.html"))


def test_a_job_directory_that_cannot_be_made_is_one_warning(tmp_path, capsys):
    from hpcray.config import Config
    from hpcray.launch import observing
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    config = Config.load(environ={"HPCRAY_JOB_DIR": str(blocked / "job")})
    assert observing.make_job_dir(config) is None
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "runs on without it" in err
    assert observing.make_job_dir(Config.load(environ={"HPCRAY_JOB_DIR": "off"})) is None
    assert commands.COMMANDS == ("status", "dashboard", "list", "summary")


def test_a_crashed_attempt_is_a_failed_span_and_the_retry_finishes_the_task():
    table = _table()
    owner, first, second = _log(), _log(), _log()
    spec = _spec(11)
    owner.submitted(spec)
    first.began(spec, pid=31)
    first.crashed(spec, "its worker process died (killed by SIGKILL)")
    table.merge(1, first.take(0))
    assert table.totals()["FAILED"] == 0                  # the owner decides, not the crash
    owner.retried(spec, "its worker process died")
    second.began(spec, pid=32)
    second.ended(spec, [(11, objects.value(b"x"))])
    owner.finished(spec, [(11, objects.value(b"x"))])
    table.merge(0, owner.take(0))
    table.merge(2, second.take(0))
    assert table.totals() == {"PENDING": 0, "RUNNING": 0, "FINISHED": 1, "FAILED": 0,
                              "RETRIED": 1}
    spans = table.spans_view()
    assert [(span["rank"], span["pid"], span["ok"]) for span in spans] == [(1, 31, False),
                                                                           (2, 32, True)]
    record = table.task_records()[0]
    assert record["attempt_number"] == 1 and record["worker_pid"] == 32


def test_tasks_unfinished_when_the_job_ends_are_abandoned():
    table = _table()
    owner = _log()
    owner.submitted(_spec(12))
    table.merge(0, owner.take(0))
    table.abandon_unfinished()
    assert table.totals()["FAILED"] == 1 and table.totals()["PENDING"] == 0
    assert table.tasks_view(5)["failed"][0]["error_type"] == "JOB_ENDED"


def test_dashboard_serves_the_job_directory_on_loopback_only(tmp_path):
    import urllib.request
    job_dir = layout.create(tmp_path / "hpcray-3")
    layout.write_snapshot(job_dir, SNAPSHOT)
    server = subprocess.Popen([sys.executable, "-m", "hpcray", "dashboard", job_dir, "--port",
                               "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()                  # hpcray dashboard: http://...
        assert "http://127.0.0.1:" in line, line + server.stderr.read()
        url = line.split()[2]
        page_text = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "hpcrayStatus" in page_text                # the page, which loads status.js
        status = urllib.request.urlopen(url.replace("dashboard.html", "status.js"),
                                        timeout=10).read().decode()
        assert status.startswith("hpcrayStatus(") and '"id":"42"' in status
        import psutil
        listening = [conn.laddr for conn in psutil.Process(server.pid).net_connections()
                     if conn.status == psutil.CONN_LISTEN]
        assert listening and all(address.ip == "127.0.0.1" for address in listening)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_work_younger_than_a_second_is_reported_only_once_it_ended():
    log = ev.EventLog()                                  # (the rank's default: 1 s)
    spec = _spec(30)
    log.submitted(spec)
    assert [event[0] for event in log.take(0)] == []     # too young to be worth a report
    log.finished(spec, [(30, objects.value(b"x"))])
    kinds = [event[0] for event in log.take(0)]
    assert kinds == [ev.DONE, ev.RECENT]                 # its count and its record
    other = _spec(31)
    log.submitted(other)
    log.unsent_submitted[31] = log.unsent_submitted[31][:4] + (time.time() - 5,)
    assert [event[0] for event in log.take(0)] == [ev.SUBMITTED]   # waiting for long: shown
