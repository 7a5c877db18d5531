"""Two-level scheduling (own node first, spill to the head), simulated nodes, and the other
ways into a job (``import`` alone starts nothing; ``mpiexec python script.py``)."""
import subprocess
import sys

from helpers import PY_BIN_DIR

BOTTOM_UP = """
import time
import hpcray as ray

@ray.remote
def child():
    time.sleep(0.05)
    return ray.get_runtime_context().get_node_id()

@ray.remote
def parent(k):
    me = ray.get_runtime_context().get_node_id()
    return me, ray.get([child.remote() for _ in range(k)])

record("nodes", len(ray.nodes()))
for k in (2, 24):
    out = ray.get([parent.remote(k) for _ in range(4)])
    local = sum(c == me for me, kids in out for c in kids)
    total = sum(len(kids) for _, kids in out)
    record(f"local_fraction_{k}", local / total)
    record(f"child_nodes_{k}", len({c for _, kids in out for c in kids}))
"""


def test_work_stays_on_its_node_until_the_node_is_full(run_job):
    # 5 ranks in simulated nodes of 2: {0 head, 1}, {2, 3}, {4}
    res = run_job(BOTTOM_UP, n=5, env={"HPCRAY_RANKS_PER_NODE": 2}, timeout=90)
    res.assert_ok()
    assert res.value("nodes") == 3
    # a small fan-out fits on the parent's own node: every child runs there
    assert res.value("local_fraction_2") == 1.0
    # a fan-out larger than the node holds spills to the head, which spreads it
    assert res.value("local_fraction_24") < 0.9
    assert res.value("child_nodes_24") >= 2


def test_ranks_per_node_flag_splits_nodes(tmp_path):
    script = tmp_path / "nodes.py"
    script.write_text("import hpcray as ray\n"
                      "print('NODES', len(ray.nodes()), sorted(len(n['Ranks']) for n in ray.nodes()))\n")
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


def test_mpiexec_without_dash_m_joins_the_job(tmp_path):
    """`mpiexec -n 3 python script.py` calling init(): rank 0 runs on, the others serve."""
    script = tmp_path / "plain.py"
    script.write_text(
        "import hpcray as ray\n"
        "ray.init()\n"
        "@ray.remote\n"
        "def rank():\n"
        "    return ray.get_runtime_context().get_rank()\n"
        "print('RANKS', sorted(set(ray.get([rank.remote() for _ in range(20)]))))\n")
    out = subprocess.run(["mpiexec", "-n", "3", sys.executable, str(script)],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": PY_BIN_DIR + ":/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("RANKS") == 1        # only rank 0 runs the script past init
    assert "RANKS [1, 2]" in out.stdout
