"""Utilities Ray users expect, built on hpcray's tasks and actors (floor 7: imports the
public layer and anything below it).

``ActorPool`` (``ray.util.ActorPool``), ``Executor`` (``concurrent.futures`` over tasks), and
the submodules ``queue`` (``Queue``), ``multiprocessing`` (``Pool``), ``state`` and
``collective``.
"""
from . import multiprocessing, queue, state
from .actor_pool import ActorPool
from .executor import Executor

__all__ = ["ActorPool", "Executor", "multiprocessing", "queue", "state"]
