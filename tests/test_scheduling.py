"""Two-level scheduling (own node first, spill to the head), simulated nodes, and the other
ways into a job (``import`` alone starts nothing; ``mpiexec python script.py``)."""
import subprocess
import sys

import pytest

from helpers import JOBS_DIR, PY_BIN_DIR, ray_stdout


def test_work_stays_on_its_node_until_the_node_is_full(run_job):
    # 5 ranks in simulated nodes of 2: {0 head, 1}, {2, 3}, {4}
    res = run_job("scheduling/bottom_up.py", n=5, env={"HPCRAY_RANKS_PER_NODE": 2}, timeout=90)
    res.assert_ok()
    assert res.value("nodes") == 3
    # a small fan-out fits on the parent's own node: every child runs there
    assert res.value("local_fraction_2") == 1.0
    # a fan-out larger than the node holds spills to the head, which spreads it
    assert res.value("local_fraction_24") < 0.9
    assert res.value("child_nodes_24") >= 2


def test_ranks_per_node_flag_splits_nodes():
    script = JOBS_DIR / "scheduling" / "nodes.py"
    out = subprocess.run(
        ["mpiexec", "-n", "4", sys.executable, "-m", "hpcray", "--ranks-per-node", "1", str(script)],
        capture_output=True, text=True, timeout=60,
        env={"PATH": PY_BIN_DIR + ":/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "NODES 4 [1, 1, 1, 1]" in out.stdout


def test_import_alone_does_not_start_mpi():
    code = "import sys, hpcray; print('mpi4py.MPI' in sys.modules, hpcray.is_initialized())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_mpiexec_without_dash_m_joins_the_job():
    """`mpiexec -n 3 python script.py` calling init(): rank 0 runs on, the others serve."""
    script = JOBS_DIR / "scheduling" / "plain_init.py"
    out = subprocess.run(["mpiexec", "-n", "3", sys.executable, str(script)],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": PY_BIN_DIR + ":/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("RANKS") == 1        # only rank 0 runs the script past init
    assert "RANKS [1, 2]" in out.stdout


@pytest.mark.parametrize("nodes, executing, env", [
    # 5 ranks in simulated nodes of 2: {0 head, 1}, {2, 3}, {4}
    (3, 3, {"HPCRAY_RANKS_PER_NODE": 2}),
    # one rank per node, over the emulated network: the head's node runs no tasks
    (5, 4, {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp,self", "HPCRAY_RANKS_PER_NODE": 1}),
], ids=["shared-memory", "network"])
def test_scheduling_strategies_do_what_rays_do(run_job, nodes, executing, env):
    res = run_job("scheduling/strategies.py", n=5, timeout=120, env=env)
    res.assert_ok()
    assert res.value("nodes") == nodes and res.value("executing_nodes") == executing
    assert res.value("node_id_is_rays_length") and res.value("context_node_id_hex")
    assert res.value("spread_nodes") == executing and res.value("default_runs")
    assert res.value("affinity_0_all_there") and res.value("affinity_last_all_there")
    assert res.value("nested_affinity")
    assert res.error("hard_unknown_node")["type"] == "TaskUnschedulableError"
    assert "node id" in res.error("hard_unknown_node")["msg"]
    assert res.value("soft_unknown_node_runs")
    assert res.value("actor_affinity") and res.value("actor_spread_nodes") == executing
    assert res.error("actor_on_unknown_node")["type"] == "ActorUnschedulableError"
    # every node of this job is on this host: node:<ip> is 1 per node, as in Ray
    assert res.value("node_ip_resource") == float(executing)
    assert res.value("node_ip_available") == float(executing)
    assert res.value("head_resource") == (1.0 if executing == nodes else None)
    assert res.value("node_ip_task")
    assert res.error("unknown_strategy")["type"] == "ValueError"
    assert res.error("invalid_node_id")["type"] == "ValueError"


def test_the_scheduling_examples_of_rays_docs(run_job):
    # python script.py, 2 workers: an affinity to the driver's node runs on its host's workers
    res = run_job("scheduling/from_rays_docs.py", embedded=True, timeout=90,
                  env={"HPCRAY_NUM_WORKERS": "2"})
    res.assert_ok()
    assert res.stdout.split("\n")[:5] == SCHEDULING_DOCS_OUTPUT


SCHEDULING_DOCS_OUTPUT = ["1", "20", "True", "True", "2 1"]   # (1 node: the laptop's)


def test_the_scheduling_examples_on_ray_print_the_same():
    assert ray_stdout("scheduling/from_rays_docs.py").split("\n")[:5] == SCHEDULING_DOCS_OUTPUT
