"""Scheduling strategies with Ray's names: ``"DEFAULT"``, ``"SPREAD"``,
:class:`NodeAffinitySchedulingStrategy` (and :class:`PlacementGroupSchedulingStrategy`, not
placed yet), and :func:`wire_strategy`, what a task's or actor's ``scheduling_strategy``
becomes in its spec (``wire/specs.py`` says what the head does with each).

Public API floor (7): imports ``wire`` and ``exceptions`` only.
"""
from .wire.specs import SPREAD, node_affinity


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
    """Run a task or actor in a bundle of a placement group (Ray's class). Placement groups
    are not supported yet: a task or actor given this strategy fails at ``.remote()``."""

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
        return node_affinity(index, bool(strategy.soft), bool(strategy._spill_on_unavailable),
                             bool(strategy._fail_on_unavailable))
    if isinstance(strategy, PlacementGroupSchedulingStrategy):
        raise NotImplementedError("placement groups are not supported by hpcray yet; "
                                  "use NodeAffinitySchedulingStrategy or resources= to place "
                                  "work on chosen nodes")
    raise ValueError(f"unknown scheduling_strategy {strategy!r}: use \"DEFAULT\", \"SPREAD\" "
                     f"or NodeAffinitySchedulingStrategy(node_id, soft)")
