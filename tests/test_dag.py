"""Ray's DAG API: bind, InputNode (whole, by index, by name), MultiOutputNode, actors and
their methods in a graph, a node shared by two branches running once, and compiled graphs;
the same script run on Ray (when installed) records the same."""
import pytest

from helpers import run_on_ray

SCRIPT = "dag/graphs.py"
EXPECTED = {
    "chain": ["ObjectRef", 10],
    "multi_output": [6, 12],
    "class_node_per_execute": [15, 15],      # a plain graph builds its actor at each execute
    "diamond": [31, 1],                      # the shared node ran once
    "compiled": ["CompiledDAGRef", 3, 7],    # a compiled graph keeps its actor's state
    "compiled_multi_output": [[7, 107], [8, 108]],
    "no_input": 3,
}


@pytest.mark.parametrize("env", [{}, {"HPCRAY_WORKER_PROCESSES": "0"}],
                         ids=["worker-processes", "in-rank"])
def test_dags_run_as_in_ray(run_job, env):
    res = run_job(SCRIPT, n=3, env=env, timeout=90)
    res.assert_ok()
    for name, value in EXPECTED.items():
        assert res.value(name) == value, (name, res.describe())


def test_the_same_dags_on_ray_record_the_same():
    assert run_on_ray(SCRIPT) == EXPECTED
