"""Logical resources, as in Ray: what a task or actor asks for, and what fits a rank.

A rank offers ``{"CPU": c, "GPU": g, "memory": bytes, custom...}`` (``launch/resources.py``
detects it); a request ``{name: amount}`` fits a rank if every amount is at most what the
rank offers. Nothing is enforced or isolated: this is bookkeeping for placement.
"""
from ..exceptions import ResourceError


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


def fits(capacity, request):
    for name, amount in request.items():
        if amount and capacity.get(name, 0.0) < amount:
            return False
    return True


def check_feasible(capacities, request, what):
    """Raise ResourceError, naming the resource, if no rank could ever run this request."""
    if any(fits(capacity, request) for capacity in capacities.values()):
        return
    for name, amount in request.items():
        best = max((capacity.get(name, 0.0) for capacity in capacities.values()), default=0.0)
        if amount > best:
            raise ResourceError(
                f"{what} requests {name}={amount:g} but no rank of this job has that much "
                f"(the largest has {name}={best:g}); it could never run")
    raise ResourceError(f"{what} requests {request}, which no single rank of this job has")
