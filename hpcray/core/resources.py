"""Logical resources, as in Ray: what a task or actor asks for, and what fits a rank.

A rank offers ``{"CPU": c, "GPU": g, "memory": bytes, custom...}`` (``launch/resources.py``
detects it); a request ``{name: amount}`` fits a rank if every amount is at most what the
rank offers. Nothing is enforced or isolated: this is bookkeeping for placement. A request
that no rank could ever satisfy is *infeasible*: as in Ray, it waits (with a warning), here
for good, since ranks never join a running MPI job.
"""


def request_of(num_cpus=None, num_gpus=None, resources=None, default_cpus=1, memory=None):
    """Build a task's resource request ``{name: amount}`` from Ray-style options."""
    request = {"CPU": float(default_cpus if num_cpus is None else num_cpus)}
    if num_gpus:
        request["GPU"] = float(num_gpus)
    if memory:
        request["memory"] = float(memory)
    for name, amount in (resources or {}).items():
        if name in ("CPU", "GPU", "memory"):
            raise ValueError(f"use num_cpus/num_gpus/memory rather than "
                             f"resources={{{name!r}: ...}}")
        request[name] = float(amount)
    for name, amount in request.items():
        if amount < 0:
            raise ValueError(f"resource {name} must not be negative, got {amount}")
    return request


def add_up(capacities, node_of):
    """The sum of ``(rank, capacity)`` pairs; a node resource (``node:<ip>``, which every rank
    of a node offers) counts once per node (``node_of``: rank -> node index, or None: each
    rank its own)."""
    total, nodes = {}, {}
    for rank, capacity in capacities:
        for name, amount in capacity.items():
            if name.startswith("node:"):
                nodes.setdefault(name, set()).add(node_of[rank] if node_of else rank)
            else:
                total[name] = total.get(name, 0.0) + amount
    for name, which in nodes.items():
        total[name] = float(len(which))
    return total


def fits(capacity, request):
    for name, amount in request.items():
        if amount and capacity.get(name, 0.0) < amount:
            return False
    return True


def infeasibility(capacities, request, what):
    """Why no rank could ever run ``request`` (naming the resource), or None if one could."""
    if any(fits(capacity, request) for capacity in capacities.values()):
        return None
    waits = ("it stays pending, as in Ray, but ranks never join a running MPI job: it will "
             "not run. Ask for less, or start the job with more per rank")
    for name, amount in request.items():
        best = max((capacity.get(name, 0.0) for capacity in capacities.values()), default=0.0)
        if amount > best:
            return (f"{what} requests {name}={amount:g} but no rank of this job has that "
                    f"much (the largest has {name}={best:g}); {waits}")
    return f"{what} requests {request}, which no single rank of this job has; {waits}"
