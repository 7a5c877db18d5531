"""``get_runtime_context()``: where the calling code runs."""
import hashlib

from . import job as _job


class RuntimeContext:
    """Facts about the current process: job, node, rank and the task it is running."""

    def __init__(self, rt):
        self._rt = rt

    def get_rank(self):
        """The MPI rank of this process in the job (0 is the head, which runs the driver)."""
        return self._rt.rank

    @property
    def rank(self):
        return self._rt.rank

    def get_world_size(self):
        """The number of ranks in the job."""
        return self._rt.size

    def get_node_id(self):
        """A hex id of this node (ranks sharing one object store share it)."""
        return node_id(self._rt, self._rt.node_index)

    def get_task_id(self):
        """The id of the task running in this thread, or None in the driver."""
        stack = getattr(self._rt.tls, "stack", None)
        return f"{stack[-1].task_id:016x}" if stack else None

    def get_actor_id(self):
        """The id of the actor whose method is running here, or None outside actors."""
        from .actor_host import current_call
        call = current_call.get()
        return f"{call.actor_id:016x}" if call is not None else None

    def get_job_id(self):
        return f"{_job.job_id():08x}"

    def get_worker_id(self):
        return f"{self._rt.rank:08x}"

    def get_namespace(self):
        return _job.state.namespace

    @property
    def namespace(self):
        return _job.state.namespace

    def get(self):
        return {"job_id": self.get_job_id(), "node_id": self.get_node_id(),
                "task_id": self.get_task_id(), "rank": self.get_rank()}


def node_id(rt, node_index):
    """Same string on every rank: derived from the node's index and its first rank's host."""
    host = rt.host_of[rt.node_of.index(node_index)]
    return hashlib.sha1(f"{host}/{node_index}".encode()).hexdigest()[:28]
