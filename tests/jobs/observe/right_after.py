"""The state API and the timeline asked right after the work, as a script's last lines do
(Ray's docs: ``ray.timeline(filename=...)`` at the end): they show all of it, although the
executors report every quarter of a second."""
import hpcray as ray
from hpcray.util.state import list_tasks
from jobkit import record

ray.init()


@ray.remote
def sample(i):
    return i


ray.get([sample.remote(i) for i in range(8)])
spans = [event for event in ray.timeline() if event.get("name") == "sample"]
record("spans_right_after", len(spans))
ray.get([sample.remote(i) for i in range(8)])
record("finished_right_after", len(list_tasks(filters=[("name", "=", "sample"),
                                                       ("state", "=", "FINISHED")])))
