"""``hpcray.util.scheduling_strategies``, as ``ray.util.scheduling_strategies``: the
strategy classes a task's or actor's ``scheduling_strategy`` option takes (besides the
strings ``"DEFAULT"`` and ``"SPREAD"``). They live in ``hpcray/scheduling.py`` (floor 7);
this module (floor 8) only gives them Ray's import path.
"""
from ..scheduling import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy"]
