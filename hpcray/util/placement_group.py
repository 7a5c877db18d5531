"""``hpcray.util.placement_group``, as ``ray.util.placement_group``: reserve bundles of
resources on the job's ranks, all or none (gang scheduling), and run tasks and actors in
them (``PlacementGroupSchedulingStrategy``). ``head/placement_groups.py`` says how bundles
map to ranks and nodes.
"""
import sys

from .. import api
from ..core import current
from ..launch import session
from ..remote_function import RemoteFunction
from ..scheduling import PlacementGroupSchedulingStrategy
from ..wire import messages
from ..wire.specs import PLACEMENT_GROUP


class PlacementGroupID:
    """A placement group's id (Ray's: ``.hex()``)."""

    def __init__(self, group_id):
        self.group_id = group_id

    def hex(self):
        return f"{self.group_id:036x}"

    def __eq__(self, other):
        return isinstance(other, PlacementGroupID) and other.group_id == self.group_id

    def __hash__(self):
        return hash(("placement group", self.group_id))

    def __repr__(self):
        return f"PlacementGroupID({self.hex()})"


class PlacementGroup:
    """A handle to a placement group: ``ready()`` (a ref ready once it is placed),
    ``wait(timeout_seconds)``, ``bundle_specs``, ``bundle_count``; pass it to
    ``PlacementGroupSchedulingStrategy``."""

    def __init__(self, group_id, bundle_specs):
        self.group_id = group_id
        self.id = PlacementGroupID(group_id)
        self.bundle_specs = [dict(bundle) for bundle in bundle_specs]

    @property
    def bundle_count(self):
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that is ready once the group is placed (its value: the group)."""
        strategy = PlacementGroupSchedulingStrategy(self, -1)
        return _ready.options(scheduling_strategy=strategy).remote(self)

    def wait(self, timeout_seconds=30):
        """Whether the group was placed within ``timeout_seconds``."""
        ready, _ = api.wait([self.ready()], timeout=timeout_seconds)
        return bool(ready)

    def __eq__(self, other):
        return isinstance(other, PlacementGroup) and other.group_id == self.group_id

    def __hash__(self):
        return hash(("placement group", self.group_id))

    def __repr__(self):
        return f"PlacementGroup({self.id.hex()}, {self.bundle_count} bundles)"


def _ready_value(group):
    return group


_ready = RemoteFunction(_ready_value, {"num_cpus": 0, "max_retries": 0})


def placement_group(bundles, strategy="PACK", name="", lifetime=None,
                    _max_cpu_fraction_per_node=None, _soft_target_node_id=None,
                    bundle_label_selector=None):
    """Reserve ``bundles`` (a list of ``{resource: amount}``) with ``strategy`` (``PACK``,
    ``SPREAD``, ``STRICT_PACK``, ``STRICT_SPREAD``); returns at once, the group placed now
    or once resources come back (``ready()``). A group that can never be placed in this job
    stays pending, as in Ray, after a warning that says why.

    Raises:
        ValueError: bad bundles, an unknown strategy, a name a live group has, or a lifetime
            other than None and "detached".
    """
    if lifetime not in (None, "detached"):
        raise ValueError(f"lifetime must be None or 'detached', got {lifetime!r}")
    rt = session.runtime()
    group_id, never = rt.requests.ask(messages.pg_create, [dict(b) for b in bundles],
                                      strategy, name, rt.job.rank, lifetime == "detached")
    if never is not None:
        sys.stderr.write(f"hpcray: warning: placement group {name or group_id} can never be "
                         f"placed: {never}; it stays pending (ranks never join an MPI job)\n")
        sys.stderr.flush()
    return PlacementGroup(group_id, bundles)


def remove_placement_group(placement_group):
    """Remove the group: its reservations go back, tasks waiting in it fail, its actors end."""
    rt = session.runtime()
    rt.requests.ask(messages.pg_remove, placement_group.group_id)


def get_placement_group(placement_group_name):
    """The group of that name.

    Raises:
        ValueError: no live group has that name.
    """
    info = session.runtime().requests.ask(messages.pg_get, placement_group_name)
    return PlacementGroup(info["placement_group_id"],
                          [info["bundles"][i] for i in sorted(info["bundles"])])


def placement_group_table(placement_group=None):
    """Ray's table: ``{group id hex: {...}}`` of every group, or one group's entry (its
    state, strategy, bundles and, once placed, the rank and node of each bundle)."""
    rt = session.runtime()
    if placement_group is not None:
        return _entry(rt, rt.requests.ask(messages.pg_table, placement_group.group_id))
    table = rt.requests.ask(messages.pg_table, None)
    return {PlacementGroupID(group_id).hex(): _entry(rt, info)
            for group_id, info in table.items()}


def _entry(rt, info):
    entry = dict(info)
    entry["placement_group_id"] = PlacementGroupID(info["placement_group_id"]).hex()
    entry["bundles_to_node_id"] = {index: rt.job.node_id(rt.job.node_of[rank])
                                   for index, rank in info["bundles_to_rank"].items()}
    return entry


def get_current_placement_group():
    """The group the calling task runs in, or None (the driver, or a task outside groups)."""
    spec = current.current_task()
    strategy = spec.strategy if spec is not None else None
    if strategy is None or strategy[0] != PLACEMENT_GROUP:
        return None
    info = session.runtime().requests.ask(messages.pg_table, strategy[1])
    return PlacementGroup(strategy[1], [info["bundles"][i] for i in sorted(info["bundles"])])


__all__ = ["PlacementGroup", "placement_group", "remove_placement_group",
           "get_placement_group", "placement_group_table", "get_current_placement_group"]
