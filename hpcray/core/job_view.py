"""The job as one rank sees it: who it is, where the ranks are, what they offer.

Built once by ``launch/join.py`` (collectively, so it is the same on every rank but for
``rank``), read by every role. Only the session's resources change, on ``init()`` after
``shutdown()`` (:meth:`JobView.set_capacities`).
"""
import hashlib
import os
import socket


class JobView:
    def __init__(self, rank, size, node_index, node_of, host_of, node_leaders, capacities,
                 job_tag, pids=None):
        self.rank = rank
        self.size = size
        self.pids = pids or [None] * size      # rank -> its process id (on its host)
        self.node_index = node_index           # this rank's node
        self.node_of = node_of                 # rank -> node index
        self.host_of = host_of                 # rank -> host name
        self.node_leaders = node_leaders       # node index -> its first rank
        self.job_tag = job_tag                 # unique to this job, same on every rank
        self.job_dir = None                    # the job directory (jobdir/), or None
        self.host = socket.gethostname()
        # Ranks that execute tasks: every rank but the head, or the head when it is alone.
        self.executors = list(range(1, size)) or [0]
        self.executes = rank in self.executors
        self.detected_capacities = capacities  # rank -> {resource: amount} the ranks offered
        self.set_capacities(capacities)

    def set_capacities(self, capacities):
        """The session's resources (``init(num_cpus=...)`` declares them)."""
        self.capacities = capacities           # rank -> {resource: amount}, as declared
        self._executing = {rank: capacities[rank] for rank in self.executors}

    def ranks_on(self, node_index):
        """The ranks of a node."""
        return [rank for rank, node in enumerate(self.node_of) if node == node_index]

    def where(self):
        """This process, for error messages: rank, host and pid."""
        return f"rank {self.rank} on host {self.host} (pid {os.getpid()})"

    def node_id(self, node_index=None):
        """A hex id of a node (this rank's by default), the same string on every rank:
        derived from the node's index and its first rank's host."""
        index = self.node_index if node_index is None else node_index
        host = self.host_of[self.node_leaders[index]]
        return hashlib.sha256(f"{host}/{index}".encode()).hexdigest()[:56]   # (Ray's length)

    def executing_capacities(self):
        """``{rank: capacity}`` of the ranks that execute tasks (do not change it)."""
        return self._executing
