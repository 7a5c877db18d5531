"""Job of tests/test_reduce.py::test_inputs_are_combined_where_they_live."""
import time
import numpy as np
import hpcray as ray
from jobkit import record, runtime

N = 300_000

@ray.remote
class Log:
    def __init__(self):
        self.calls = []
    def add(self, call):
        self.calls.append(call)
    def take(self):
        calls, self.calls = self.calls, []
        return calls

@ray.remote(num_returns=2)
def make(i, delay):
    time.sleep(delay)
    a = np.full(N, float(i))
    a[-1] = 0.5                                # marks an input: combined values end >= 1
    return a, runtime().job.node_index

def traced_add(a, b):
    rt = runtime()
    args = [[float(x[0]) if x[-1] == 0.5 else None,        # which input, if one
             bool(np.shares_memory(x, rt.store.data))]     # read in place from this node
            for x in (a, b)]
    ray.get(ray.get_actor("reduce-log").add.remote([rt.job.node_index, args]))
    return a + b

log = Log.options(name="reduce-log").remote()

def run(count, ready):
    made = [make.remote(i, 0.05 if ready else 0.4) for i in range(count)]
    refs = [ref for ref, _ in made]
    if ready:
        ray.wait(refs, num_returns=count)
    total = ray.get(ray.reduce(refs, traced_add))  # (when not ready: submitted at once)
    nodes = ray.get([node for _, node in made])
    return summary(nodes, total, ray.get(log.take.remote()))

def summary(nodes, total, calls):
    # An input alone on its node is not combined there: it moves once, as a partial result.
    alone = {node for node in nodes if nodes.count(node) == 1}
    inputs, pair_nodes = {}, []                # input -> (node it was combined on, in place)
    for node, args in calls:
        originals = [(int(i), zero_copy) for i, zero_copy in args
                     if i is not None and nodes[int(i)] not in alone]
        if not originals:
            pair_nodes.append(node)
        for index, zero_copy in originals:
            inputs[index] = (node, zero_copy)
    count = len(nodes)
    return {"right": bool(np.array_equal(total[:-1], np.full(N - 1, count * (count - 1) / 2))),
            "calls": len(calls), "input_nodes": sorted(set(nodes)),
            "seen": sorted(inputs) == [i for i, node in enumerate(nodes) if node not in alone],
            "where_they_live": all(inputs[i][0] == nodes[i] for i in inputs),
            "zero_copy": all(zero_copy for _, zero_copy in inputs.values()),
            "pair_nodes": sorted(set(pair_nodes)), "pairs": len(pair_nodes),
            "caller_node": runtime().job.node_index}

@ray.remote
def nested(count):                             # the same, reduced by a worker
    return run(count, ready=True)

record("pending", run(8, ready=False))         # 2 per rank: all placed at once, with room
record("ready", run(12, ready=True))
record("worker", ray.get(nested.remote(9)))
