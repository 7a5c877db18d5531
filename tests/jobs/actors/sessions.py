"""Job of tests/test_actors.py::test_actors_end_with_their_session."""
import hpcray as ray
from hpcray.exceptions import ActorDiedError
from jobkit import check, record

@ray.remote
class A:
    def ping(self):
        return "pong"

a = A.remote()
record("before", ray.get(a.ping.remote()))
ray.shutdown()
ray.init()

@check
def old_handle():
    a.ping.remote()

record("new_actor", ray.get(A.remote().ping.remote()))
