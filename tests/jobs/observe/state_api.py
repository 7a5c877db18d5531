"""The state API and the timeline of a running job (tests/test_observe.py).

argv[1]: "network" when the job's ranks are simulated nodes (a transfer between nodes is
expected in the timeline)."""
import json
import os
import sys
import time

import numpy as np

import hpcray as ray
from hpcray.util.state import (get_task, list_actors, list_nodes, list_objects, list_tasks,
                               list_workers, summarize_actors, summarize_objects,
                               summarize_tasks)
from jobkit import check

ray.init()
network = sys.argv[1:] == ["network"]


@ray.remote
def square(x):
    time.sleep(0.005)
    return x * x


@ray.remote
def explode():
    raise ValueError("explode went wrong")


@ray.remote
def nap(seconds):
    time.sleep(seconds)
    return seconds


@ray.remote
def big():
    return np.ones(4 << 20, dtype=np.uint8)          # 4 MiB: stored, not inline


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


def until(condition, seconds=30.0):
    """Ranks report every quarter of a second: wait (bounded) until the view shows it."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


assert sum(ray.get([square.remote(i) for i in range(20)])) == sum(i * i for i in range(20))
counter = Counter.options(name="the_counter").remote()
assert ray.get([counter.incr.remote() for _ in range(5)])[-1] == 5
try:
    ray.get(explode.remote())
except ValueError:
    pass
sleeper = nap.remote(4.0)
kept = ray.put(np.zeros(1 << 20, dtype=np.uint8))
array = ray.get(big.remote())                         # (from another node, with network)


@check
def running_task_is_listed():
    running = until(lambda: list_tasks(filters=[("state", "=", "RUNNING")]))
    return [(task.name, task["type"], task.worker_pid is not None) for task in running]


@check
def finished_squares():
    finished = until(lambda: len(list_tasks(filters=[("name", "=", "square"),
                                                     ("state", "=", "FINISHED")],
                                            limit=1000)) == 20 and
                     list_tasks(filters=[("name", "=", "square")], limit=1000))
    return {"count": len(finished), "states": sorted({t.state for t in finished}),
            "ranks": sorted({t.rank for t in finished}),
            "fields": sorted(finished[0].keys())}


@check
def failed_task():
    failed = until(lambda: list_tasks(filters=[("state", "=", "FAILED")]))
    task = failed[0]
    return {"name": task.name, "error_type": task.error_type,
            "has_traceback": "explode went wrong" in task.error_message
            and "Traceback" in task.error_message,
            "found_again": get_task(task.task_id).task_id == task.task_id}


@check
def limit_is_respected():
    return len(list_tasks(limit=3))


@check
def summary_of_tasks():
    summary = until(lambda: summarize_tasks()["cluster"]["summary"].get("square", {})
                    .get("state_counts", {}).get("FINISHED") == 20 and summarize_tasks())
    cluster = summary["cluster"]
    return {"square": cluster["summary"]["square"], "explode":
            cluster["summary"]["explode"]["state_counts"],
            "incr": cluster["summary"]["Counter.incr"]["state_counts"],
            "actor_tasks": cluster["total_actor_tasks"], "by": cluster["summary_by"]}


@check
def actors():
    found = list_actors(filters=[("class_name", "=", "Counter")])
    actor = found[0]
    calls = until(lambda: list_actors()[0]["calls"] == 5 and list_actors()[0]["calls"])
    return {"name": actor.name, "state": actor.state, "calls": calls,
            "has_pid": actor.pid is not None,
            "summary": summarize_actors()["cluster"]["summary"]["Counter"]["state_counts"]}


@check
def nodes_and_workers():
    nodes = list_nodes()
    workers = until(lambda: len(list_workers(filters=[("worker_type", "=", "WORKER")])) > 0
                    and list_workers(limit=1000))
    return {"nodes": len(nodes), "heads": sum(1 for node in nodes if node.is_head_node),
            "alive": sorted({node.state for node in nodes}),
            "driver": [w.pid for w in workers if w.worker_type == "DRIVER"] == [
                __import__("os").getpid()],
            "worker_ranks": sorted({w.rank for w in workers if w.worker_type == "WORKER"})}


@check
def objects():
    listed = until(lambda: any(o.object_size == (1 << 20) + 0 or (o.object_size or 0) >= 1 << 20
                               for o in list_objects(limit=1000)) and list_objects(limit=1000))
    summary = summarize_objects()["cluster"]
    return {"big_one": any((o.object_size or 0) >= 1 << 20 for o in listed),
            "driver_owned": any(o.type == "DRIVER" for o in listed),
            "total_objects": summary["total_objects"] >= 1}


@ray.remote(max_restarts=1)
class Fragile:
    def pid(self):
        return os.getpid()

    def die(self):
        os._exit(1)


@ray.remote(max_retries=1)
def crash_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)                                   # the first attempt's process dies
    return "second attempt"


def _pid_or_none(actor):
    try:
        return ray.get(actor.pid.remote(), timeout=5)
    except Exception:
        return None


@check
def restarts_retries_and_deaths():
    fragile = Fragile.remote()
    first = ray.get(fragile.pid.remote())
    fragile.die.remote()
    second = until(lambda: _pid_or_none(fragile), 30)
    victim = Counter.remote()
    ray.get(victim.incr.remote())
    ray.kill(victim)
    retried = ray.get(crash_once.remote(os.path.abspath("crash_once.marker")))
    fragile_state = until(lambda: list_actors(filters=[("class_name", "=", "Fragile")])[0]
                          .restarts == 1 and list_actors(filters=[("class_name", "=",
                                                                   "Fragile")])[0])
    dead = until(lambda: [a for a in list_actors(filters=[("state", "=", "DEAD")])])
    crash_row = until(lambda: list_tasks(filters=[("name", "=", "crash_once"),
                                                  ("state", "=", "FINISHED")]))
    return {"new_process": first != second, "restarts": fragile_state.restarts,
            "dead": [(a.class_name, "kill" in (a.death_cause or "").lower()
                      or "killed" in (a.death_cause or "").lower()) for a in dead],
            "retried": retried, "attempt": crash_row[0].attempt_number}


@ray.remote
class Talker:
    def say(self, text):
        print(text)
        return text


@check
def everything_else_rays_state_api_has():
    from hpcray.util.placement_group import placement_group, remove_placement_group
    from hpcray.util.state import (get_log, get_node, get_objects, get_placement_group,
                                   get_worker, list_jobs, list_logs, list_placement_groups,
                                   list_workers as workers)
    group = placement_group([{"CPU": 1}], name="the_group")
    ray.get(group.ready())
    groups = list_placement_groups(filters=[("name", "=", "the_group")])
    talker = Talker.remote()
    ray.get(talker.say.remote("hello from the talker"))
    talker_id = [a.actor_id for a in list_actors(filters=[("class_name", "=", "Talker")])][0]
    lines = until(lambda: [line for line in get_log(actor_id=talker_id)
                           if "hello from the talker" in line])
    jobs = list_jobs()
    node = list_nodes()[0]
    worker = workers(filters=[("worker_type", "=", "WORKER")])[0]
    object_id = list_objects()[0].object_id
    result = {"group": (groups[0].state, len(groups[0].bundles),
                        get_placement_group(groups[0].placement_group_id).name),
              "jobs": (len(jobs), jobs[0].status, jobs[0].driver_info["pid"] == os.getpid()),
              "node": get_node(node.node_id).node_id == node.node_id,
              "worker": get_worker(worker.worker_id).pid == worker.pid,
              "object": [o.object_id for o in get_objects(object_id)] == [object_id],
              "logs": sorted(name for names in list_logs().values() for name in names),
              "log_line": len(lines) >= 1,
              "case_insensitive": len(list_tasks(filters=[("state", "=", "finished")])) > 0}
    remove_placement_group(group)
    return result


@check
def bad_filter():
    list_tasks(filters=[("state", "~", "RUNNING")])


assert ray.get(sleeper) == 4.0


@check
def timeline():
    ray.timeline("timeline.json")
    with open("timeline.json") as handle:
        events = json.load(handle)
    spans = [event for event in events if event["ph"] == "X"]
    tracks = {(event["pid"], event["tid"]) for event in spans}
    names = {event["args"]["name"] for event in events if event["ph"] == "M"
             and event["name"] == "process_name"}
    return {"cats": sorted({event["cat"] for event in spans}),
            "square_spans": sum(1 for event in spans if event["name"] == "square"),
            "tracks_more_than_one": len(tracks) > 1,
            "rank_names": sorted(names),
            "returned": ray.timeline() is not None and isinstance(ray.timeline(), list),
            "sane": all(event["dur"] >= 0 and event["ts"] >= 0 for event in spans)}
