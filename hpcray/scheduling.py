"""Scheduling strategies with Ray's names: ``"DEFAULT"``, ``"SPREAD"``,
:class:`NodeAffinitySchedulingStrategy` and :class:`PlacementGroupSchedulingStrategy`, and
:func:`strategy_of`, what a task's or actor's options become in its spec (``wire/specs.py``
says what the head does with each).

Public API floor (7): imports ``wire`` and ``core`` only.
"""
from .core import current
from .wire.specs import PLACEMENT_GROUP, SPREAD, in_placement_group, node_affinity


class NodeAffinitySchedulingStrategy:
    """Run a task or actor on one node (``node_id``: the hex id that
    ``get_runtime_context().get_node_id()`` and ``nodes()`` give).

    If the node exists and could run it, it runs only there, waiting for room as long as it
    takes. If the node does not exist, has died, or has no rank that could ever run it, it
    fails with TaskUnschedulableError (ActorUnschedulableError) when ``soft`` is False, and
    runs anywhere when ``soft`` is True. ``_spill_on_unavailable`` (with ``soft``): run
    elsewhere rather than wait when the node is busy; ``_fail_on_unavailable`` (without
    ``soft``): fail rather than wait. Ray's class and meaning.
    """

    def __init__(self, node_id, soft, _spill_on_unavailable=False, _fail_on_unavailable=False):
        if not isinstance(node_id, str):
            node_id = node_id.hex()
        try:
            valid = bool(node_id) and int(node_id, 16) != 0
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"Invalid node_id {node_id!r}. Node ID must be a valid hex "
                             f"string: take it from hpcray.nodes() or "
                             f"get_runtime_context().get_node_id()")
        if _spill_on_unavailable and not soft:
            raise ValueError("_spill_on_unavailable cannot be set when soft is False. "
                             "Please set soft to True to use _spill_on_unavailable.")
        if _fail_on_unavailable and soft:
            raise ValueError("_fail_on_unavailable cannot be set when soft is True. "
                             "Please set soft to False to use _fail_on_unavailable.")
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def __repr__(self):
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"


class PlacementGroupSchedulingStrategy:
    """Run a task or actor in a bundle of a placement group (``placement_group_bundle_index``,
    -1: any bundle with room), using the bundle's reserved resources; with
    ``placement_group_capture_child_tasks`` the tasks it submits run in the group too.
    Ray's class and meaning."""

    def __init__(self, placement_group, placement_group_bundle_index=-1,
                 placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


def wire_strategy(strategy, job):
    """What ``scheduling_strategy`` becomes in a spec: None (``"DEFAULT"``), ``SPREAD``, or a
    ``node_affinity`` whose node is an index of ``job`` (-1: no node of this job has that id).

    Raises:
        ValueError: not a strategy hpcray knows (the message lists those it does).
        NotImplementedError: a placement group strategy.
    """
    if strategy is None or strategy == "DEFAULT":
        return None
    if strategy == "SPREAD":
        return SPREAD
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        wanted = strategy.node_id.lower()
        index = next((i for i in range(len(job.node_leaders)) if job.node_id(i) == wanted),
                     -1)
        index = executing_node(job, index)
        return node_affinity(index, bool(strategy.soft), bool(strategy._spill_on_unavailable),
                             bool(strategy._fail_on_unavailable))
    if isinstance(strategy, PlacementGroupSchedulingStrategy):
        group = strategy.placement_group
        if group is None:
            return None
        index = strategy.placement_group_bundle_index
        if not isinstance(index, int) or index < -1:
            raise ValueError(f"placement_group_bundle_index must be an int >= -1, got {index!r}")
        return in_placement_group(group.group_id, index,
                                  bool(strategy.placement_group_capture_child_tasks))
    raise ValueError(f"unknown scheduling_strategy {strategy!r}: use \"DEFAULT\", \"SPREAD\" "
                     f"or NodeAffinitySchedulingStrategy(node_id, soft)")


def executing_node(job, index):
    """The node that runs the work meant for node ``index``: itself, or, when it runs none
    (the driver's own, in ``python script.py``: MPI makes the driver a node of its own), the
    one node of the same host that does."""
    executing = job.executing_capacities()
    if index < 0 or any(rank in executing for rank in job.ranks_on(index)):
        return index
    host = job.host_of[job.node_leaders[index]]
    nodes = {job.node_of[rank] for rank in executing if job.host_of[rank] == host}
    return nodes.pop() if len(nodes) == 1 else index


def strategy_of(options, job):
    """The spec's strategy for these ``.options()``: ``scheduling_strategy``, or Ray's older
    ``placement_group=`` / ``placement_group_bundle_index=`` options."""
    strategy = options.get("scheduling_strategy")
    group = options.get("placement_group")
    if strategy is None and group is not None and group != "default":
        strategy = PlacementGroupSchedulingStrategy(
            group, options.get("placement_group_bundle_index", -1),
            options.get("placement_group_capture_child_tasks"))
    return wire_strategy(strategy, job)


def captured():
    """The placement group strategy a task inherits from the task submitting it, when that
    one runs in a group that captures child tasks (else None)."""
    spec = current.current_task()
    strategy = spec.strategy if spec is not None else None
    if strategy is not None and strategy[0] == PLACEMENT_GROUP and strategy[3]:
        return in_placement_group(strategy[1], -1, True)
    return None

