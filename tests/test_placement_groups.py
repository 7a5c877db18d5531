"""Placement groups (gang scheduling on an MPI job): bundles reserved on ranks, tasks and
actors in bundles, child tasks captured, pending groups placed once resources come back,
removal (waiting work fails, actors end), names and Ray's table; between simulated nodes in
shared memory and over the emulated network."""
import pytest

from helpers import ray_stdout

NETWORK = {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp,self"}


@pytest.mark.parametrize("env", [{}, NETWORK], ids=["shared-memory", "network"])
def test_placement_groups(run_job, env):
    # 3 ranks, one per simulated node, 1 CPU each: the head and two executing ranks
    res = run_job("placement/groups.py", n=3, timeout=120,
                  env={"HPCRAY_CPUS_PER_RANK": "1", "HPCRAY_RANKS_PER_NODE": "1", **env})
    res.assert_ok()
    assert res.value("ready") == [True, True]
    assert res.value("table") == ["CREATED", "STRICT_SPREAD", "pair", 2]  # 2 distinct nodes
    assert res.value("all_groups") and res.value("by_name")
    assert res.value("bundles_on_their_ranks") == [True, 2]
    assert res.value("any_bundle") == [[1, True], [2, True]]
    assert res.value("outside_groups_waits")    # every CPU is reserved by the group
    assert res.value("captured")[1] is True
    assert res.value("actor_in_bundle")
    assert res.value("captured_by_an_actor") is True
    assert res.value("pending_while_reserved") == [False, "PENDING"]
    assert res.value("placed_after_removal") == [True, "CREATED"]
    assert res.value("actor_after_removal") == "ActorDiedError"
    assert "STRICT_SPREAD" in res.error("bad_strategy")["msg"]
    assert res.error("empty_bundle")["type"] == "ValueError"
    out_of_range = res.error("bundle_out_of_range")
    assert out_of_range["type"] == "TaskUnschedulableError"
    assert "out of range" in out_of_range["msg"]


DOCS_OUTPUT = ["CREATED", "1", "The placement group cannot be created because it requires 2 GPUs",
               "actor ready", "REMOVED"]


def test_the_example_of_rays_docs(run_job):
    res = run_job("placement/from_rays_docs.py", n=3, timeout=90)
    res.assert_ok()
    assert res.stdout.split("\n")[:5] == DOCS_OUTPUT
    assert "can never be placed" in res.stderr


def test_the_example_of_rays_docs_on_ray_prints_the_same():
    assert [line for line in ray_stdout("placement/from_rays_docs.py").split("\n")
            if line in DOCS_OUTPUT] == DOCS_OUTPUT
