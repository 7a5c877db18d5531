"""Job of tests/test_dag.py: Ray's DAG API (bind, InputNode, MultiOutputNode, actors in a
graph, experimental_compile), written as Ray's docs use it. It runs on hpcray, or on Ray
itself (``RAY_MODULE=ray``), and the test compares what both record."""
import importlib
import os
import warnings

from jobkit import record

ray = importlib.import_module(os.environ.get("RAY_MODULE", "hpcray"))
dag_api = importlib.import_module(ray.__name__ + ".dag")
InputNode, MultiOutputNode = dag_api.InputNode, dag_api.MultiOutputNode
warnings.simplefilter("ignore")                 # (Ray deprecates DAGNode.execute)
ray.init()


@ray.remote
def add(a, b):
    return a + b


@ray.remote
def double(x):
    return 2 * x


@ray.remote
def total(*values):
    return sum(values)


@ray.remote
class Counter:
    def __init__(self, start):
        self.count = start

    def add(self, x):
        self.count += x
        return self.count


@ray.remote
class Calls:
    def __init__(self):
        self.calls = 0

    def tick(self, x):
        self.calls += 1
        return x

    def count(self):
        return self.calls


with InputNode() as inp:
    chain = double.bind(add.bind(inp[0], inp[1]))
result = chain.execute(2, 3)
record("chain", [type(result).__name__, ray.get(result)])

with InputNode() as inp:
    first = add.bind(inp.x, 1)
    both = MultiOutputNode([first, double.bind(first)])
record("multi_output", ray.get(both.execute(x=5)))

counter = Counter.bind(10)
method = counter.add.bind(5)
record("class_node_per_execute", [ray.get(method.execute()), ray.get(method.execute())])

calls = Calls.remote()
with InputNode() as inp:
    shared = calls.tick.bind(inp)              # used twice below: runs once per execute
    diamond = total.bind(add.bind(shared, 1), double.bind(shared))
record("diamond", [ray.get(diamond.execute(10)), ray.get(calls.count.remote())])

handle = Counter.remote(0)
with InputNode() as inp:
    step = handle.add.bind(inp)
compiled = step.experimental_compile()
ref = compiled.execute(3)
record("compiled", [type(ref).__name__, ray.get(ref), ray.get(compiled.execute(4))])
compiled.teardown()

left, right = Counter.remote(0), Counter.remote(100)
with InputNode() as inp:                       # (Ray compiles graphs of actor methods only)
    pair = MultiOutputNode([left.add.bind(inp), right.add.bind(inp)])
compiled_pair = pair.experimental_compile()
record("compiled_multi_output", [ray.get(compiled_pair.execute(7)),
                                 ray.get(compiled_pair.execute(1))])
compiled_pair.teardown()
record("no_input", ray.get(add.bind(1, 2).execute()))
