"""Job of tests/test_output.py: what tasks and actors print reaches the driver with Ray's
prefix. Arguments: ``quiet`` (``init(log_to_driver=False)``). Runs on Ray too
(``RAY_MODULE=ray``)."""
import importlib
import os
import socket
import sys

from jobkit import record

ray = importlib.import_module(os.environ.get("RAY_MODULE", "hpcray"))   # (or Ray itself)
ray.init(log_to_driver="quiet" not in sys.argv[1:])


def where():
    context = ray.get_runtime_context()
    rank = context.get_rank() if hasattr(context, "get_rank") else None
    return [os.getpid(), rank, socket.gethostname()]


@ray.remote
def shout(i):
    print(f"shout out {i}")
    print(f"shout err {i}", file=sys.stderr)
    sys.stdout.write(f"shout write {i}\n")
    sys.stdout.write("shout in ")
    sys.stdout.write("pieces\n")
    return where()


@ray.remote
class Counter:
    def __init__(self):
        print("counter built")

    def incr(self):
        print("counter incr")
        print("counter complains", file=sys.stderr)
        return where()


record("shout", ray.get(shout.remote(1)))
counter = Counter.remote()
record("counter", ray.get(counter.incr.remote()))
record("driver", where())
print("driver line", flush=True)
