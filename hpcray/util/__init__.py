"""Utilities Ray users expect, built on hpcray's tasks and actors (floor 7: imports the
public layer and anything below it).

``ActorPool`` (``ray.util.ActorPool``), ``Executor`` (``concurrent.futures`` over tasks), and
the submodules ``queue`` (``Queue``), ``multiprocessing`` (``Pool``), ``state``,
``scheduling_strategies``, ``metrics`` and ``collective``; ``get_node_ip_address()``.
"""
from ..launch.resources import node_ip as get_node_ip_address
from . import metrics, multiprocessing, queue, scheduling_strategies, state
from .actor_pool import ActorPool
from .executor import Executor

__all__ = ["ActorPool", "Executor", "get_node_ip_address", "metrics", "multiprocessing", "queue",
           "scheduling_strategies", "state"]
