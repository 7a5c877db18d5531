"""Utilities Ray users expect, built on hpcray's tasks and actors (floor 7: imports the
public layer and anything below it).

``ActorPool`` (``ray.util.ActorPool``), ``Executor`` (``concurrent.futures`` over tasks),
placement groups (``placement_group`` and its functions), ``get_node_ip_address()``, and the
submodules ``queue`` (``Queue``), ``multiprocessing`` (``Pool``), ``state``,
``scheduling_strategies``, ``metrics`` and ``collective``.
"""
from ..launch.resources import node_ip as get_node_ip_address
from . import metrics, multiprocessing, queue, scheduling_strategies, state
from .actor_pool import ActorPool
from .executor import Executor
from .placement_group import (PlacementGroup, get_current_placement_group, get_placement_group,
                              placement_group, placement_group_table, remove_placement_group)

__all__ = ["ActorPool", "Executor", "PlacementGroup", "get_current_placement_group",
           "get_placement_group", "placement_group", "placement_group_table",
           "remove_placement_group", "get_node_ip_address", "metrics", "multiprocessing",
           "queue", "scheduling_strategies", "state"]
