"""What each rank offers the scheduler (CPUs, GPUs, memory, custom resources) and GPU pinning.

Every executing rank advertises:

* ``CPU``: ``SLURM_CPUS_PER_TASK`` under Slurm, else ``HPCRAY_CPUS_PER_RANK``, else the host's
  cores shared by its executing ranks (at least 1);
* ``GPU``: the GPUs pinned to it (below);
* ``memory``: bytes, from Slurm (``SLURM_MEM_PER_NODE`` / ``SLURM_MEM_PER_CPU``, in MB) or
  the host's RAM less its object stores, shared by the host's executing ranks;
* custom resources from ``HPCRAY_RESOURCES`` / ``--resources '{"name": amount}'``, each rank;
* Ray's node resources: ``node:<ip>`` (1 on each rank of the node: the job's total counts it
  once per node), and ``node:__internal_head__`` on the head's node.

GPU pinning. A node's GPU ids come from, in order: ``HPCRAY_GPUS`` / ``--gpus 0,1`` (declared),
``CUDA_VISIBLE_DEVICES`` as the launcher set it (Slurm sets it to what it granted the step),
``SLURM_STEP_GPUS`` / ``SLURM_JOB_GPUS``, ``SLURM_GPUS_ON_NODE`` (a count), and
``nvidia-smi -L``. The node's first rank looks once and tells the others; the ids are dealt to
the node's executing ranks in rank order (one each; extra GPUs round-robin, extra ranks none).
Each rank then sets ``CUDA_VISIBLE_DEVICES`` to its own ids, empty when it has none, before the
script or any task runs, so CUDA libraries imported later see exactly the rank's devices.
"""
import os
import socket
import subprocess

from ..config import LAUNCH_CUDA_VISIBLE_DEVICES as ORIGINAL_VISIBLE

_gpu_ids = []          # this rank's GPU ids, as pinned


def _ids(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def node_gpus(config):
    """GPU ids of this node (strings), from what was declared or what the system reports."""
    if config.gpus is not None:
        return list(config.gpus)
    visible = os.environ.get(ORIGINAL_VISIBLE, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if visible is not None and visible.strip() and visible.strip() not in ("NoDevFiles", "-1"):
        return _ids(visible)
    for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        if os.environ.get(name):
            return _ids(os.environ[name])
    count = os.environ.get("SLURM_GPUS_ON_NODE")
    if count and count.isdigit():
        return [str(i) for i in range(int(count))]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in listing.splitlines()
                                            if l.startswith("GPU "))]


def deal_gpus(gpus, position, executing):
    """The ids of ``gpus`` for the rank at ``position`` among ``executing`` ranks of a node."""
    if position is None or not executing:
        return []
    return gpus[position::executing]


def pin_gpus(ids):
    """Make ``ids`` this process's only visible GPUs (empty: none), remembering what the
    launcher had set, so that a later ``init`` on this process still sees the node's GPUs."""
    global _gpu_ids
    if ORIGINAL_VISIBLE not in os.environ:
        os.environ[ORIGINAL_VISIBLE] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
    _gpu_ids = [int(i) if i.isdigit() else i for i in ids]


def gpu_ids():
    """The GPU ids pinned to this rank (``ray.get_gpu_ids()``)."""
    return list(_gpu_ids)


def cpus(config, executing_here):
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit():
        return float(slurm)
    if config.cpus_per_rank:
        return float(config.cpus_per_rank)
    return float(max(1, (os.cpu_count() or 1) // max(executing_here, 1)))


def memory(executing_here, store_bytes_here, cpu_count):
    per_node = os.environ.get("SLURM_MEM_PER_NODE")
    if per_node and per_node.isdigit():
        return float(int(per_node) << 20) / max(executing_here, 1)
    per_cpu = os.environ.get("SLURM_MEM_PER_CPU")
    if per_cpu and per_cpu.isdigit():
        return float(int(per_cpu) << 20) * cpu_count
    import psutil
    free = psutil.virtual_memory().total - store_bytes_here
    return float(max(free, 0) // max(executing_here, 1))


def node_ip():
    """This host's IP address, as Ray names nodes (``node:<ip>`` resources): the address of
    the interface that routes outwards, else what the host name resolves to."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.254.254.254", 1))   # (UDP: nothing is sent)
        return probe.getsockname()[0]
    except OSError:
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"
    finally:
        probe.close()


def node_resources(ip, head_node):
    """Ray's per-node resources, which every executing rank of the node offers: ``node:<ip>``,
    and ``node:__internal_head__`` on the head's node."""
    offered = {f"node:{ip}": 1.0}
    if head_node:
        offered["node:__internal_head__"] = 1.0
    return offered


def rank_capacity(config, executes, executing_here, gpus, store_bytes_here):
    """What this rank advertises (nothing if it does not execute)."""
    if not executes:
        return {}
    capacity = {"CPU": cpus(config, executing_here)}
    if gpus:
        capacity["GPU"] = float(len(gpus))
    capacity["memory"] = memory(executing_here, store_bytes_here, capacity["CPU"])
    capacity.update(dict(config.resources))
    return capacity


def with_declared(detected, declared):
    """``init(num_cpus=, num_gpus=, resources=)`` declares job totals, as Ray's does: they
    replace what was detected (``{rank: capacity}``; logical amounts, nothing is pinned),
    dealt to the executing ranks in rank order: a whole total in whole units (3 GPUs on 2
    ranks: 2 and 1; 1 GPU: 1 and 0, so that ``num_gpus=1`` runs), else in equal parts."""
    executing = sorted(rank for rank, capacity in detected.items() if capacity)
    capacities = {rank: dict(capacity) for rank, capacity in detected.items()}
    for name, total in declared.items():
        if total is None or not executing:
            continue
        total = float(total)
        whole, count = total.is_integer(), len(executing)
        for position, rank in enumerate(executing):
            if whole:
                share = total // count + (1 if position < total % count else 0)
            else:
                share = total / count
            capacities[rank][name] = float(share)
    return capacities
