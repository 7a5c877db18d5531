"""Job of tests/test_util.py::test_metrics: Ray's Counter, Gauge and Histogram recorded by
the driver, by tasks (in worker processes or ranks) and by actors, read back job-wide with
snapshot(), from the driver and from a task."""
import hpcray as ray
from hpcray.util.metrics import Counter, Gauge, Histogram, snapshot
from jobkit import check, record


@ray.remote
def work(i):
    done = Counter("tasks_done", description="tasks that ran", tag_keys=("parity",))
    done.inc(tags={"parity": "even" if i % 2 == 0 else "odd"})
    Histogram("seconds", boundaries=[0.1, 1.0]).observe(i * 0.1)
    return i


@ray.remote
class Server:
    def __init__(self):
        self.calls = Counter("calls", tag_keys=("route",)).set_default_tags({"route": "/"})

    def call(self, route=None):
        self.calls.inc(tags={"route": route} if route else None)
        return 1


@ray.remote
def read_from_a_task():
    return snapshot()["tasks_done"]["values"]


ray.get([work.remote(i) for i in range(10)])
server = Server.remote()
ray.get([server.call.remote() for _ in range(3)] + [server.call.remote("/api")])
depth = Gauge("queue_depth", description="items waiting")
depth.set(7)
depth.set(3)                                   # the last set wins
table = snapshot()
record("counter", table["tasks_done"]["values"])
record("counter_description", [table["tasks_done"]["type"], table["tasks_done"]["description"]])
record("actor_counter", table["calls"]["values"])
record("gauge", table["queue_depth"]["values"])
record("histogram", [table["seconds"]["boundaries"], table["seconds"]["values"][0][1]["buckets"],
                     table["seconds"]["values"][0][1]["count"]])
record("from_a_task", ray.get(read_from_a_task.remote()))


@check
def missing_tag():
    Counter("c", tag_keys=("k",)).inc()


@check
def unknown_tag():
    Counter("c2").inc(tags={"nope": "x"})


@check
def counter_goes_up_only():
    Counter("c3").inc(-1)


@check
def histogram_needs_boundaries():
    Histogram("h")
