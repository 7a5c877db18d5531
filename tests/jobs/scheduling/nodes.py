"""Job of tests/test_scheduling.py::test_ranks_per_node_flag_splits_nodes."""
import hpcray as ray
print('NODES', len(ray.nodes()), sorted(len(n['Ranks']) for n in ray.nodes()))
