"""Generator tasks and actor methods (Ray's ``num_returns="streaming"``, the default for
generator functions, and ``"dynamic"``): items reach the caller while the task runs, errors
at the right item, ``wait``, ``cancel``, ``async for``, refs inside items, large items; in
worker processes, in the ranks, between simulated nodes over the emulated network, and
embedded. Where Ray is installed (``RAY_PYTHON``, else this interpreter), the same script
run on Ray must record the same values."""
import pytest

from helpers import run_on_ray

SCRIPT = "generators/streams.py"
EXPECTED = {
    "type": "ObjectRefGenerator",
    "items": [0, 10, 20, 30, 40],
    "error_mid_stream": [0, 10, "ValueError: True"],
    "next": [0, 10, "StopIteration"],
    "dynamic": ["ObjectRef", "DynamicObjectRefGenerator", [0, 1, 2]],
    "first_item_while_running": ["first", True],
    "wait_before_the_item": [0, 1],
    "wait_once_it_came": [1, 0, "second"],
    "backpressure": [5, True, True],     # paused after 2 unconsumed items, until taken
    "nested": 60,
    "arrays": [0, 1, 2],
    "refs_inside": [0, 7, 14],
    "actor_items": [100, 101, 102],
    "actor_dynamic": [0, 1],
    "async_actor_items": [0, 3, 6, 9],
    "actor_backpressure": [5, True],
    "cancel": ["TaskCancelledError", True],
    "async_for": [0, 10, 20],
}
NETWORK = {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp,self", "HPCRAY_RANKS_PER_NODE": "1"}


@pytest.mark.parametrize("n, env, embedded", [
    (3, {}, False),
    (3, {"HPCRAY_WORKER_PROCESSES": "0"}, False),
    (3, NETWORK, False),
    (1, {}, True),
], ids=["worker-processes", "in-rank", "network", "embedded"])
def test_generators_stream_as_in_ray(run_job, n, env, embedded):
    res = run_job(SCRIPT, n=n, env=env, embedded=embedded, timeout=120)
    res.assert_ok()
    for name, value in EXPECTED.items():
        assert res.value(name) == value, (name, res.describe())


def test_the_same_script_on_ray_records_the_same():
    assert run_on_ray(SCRIPT) == EXPECTED
