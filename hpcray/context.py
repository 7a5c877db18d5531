"""``get_runtime_context()``: where the calling code runs."""
from .actors.host import current_call
from .core import current
from .launch.resources import gpu_ids
from .scheduling import executing_node


class NodeID(str):
    """A node id that is also its hex string (Ray's ``NodeID`` has ``.hex()``)."""

    def hex(self):
        return str(self)

    def binary(self):
        return bytes.fromhex(self)


class RuntimeContext:
    """Facts about the current process: job, node, rank and the task it is running."""

    def __init__(self, rt, namespace=None):
        self._rt = rt
        self._namespace = namespace

    def get_rank(self):
        """The MPI rank of this process in the job (0 is the head, which runs the driver)."""
        return self._rt.job.rank

    @property
    def rank(self):
        return self._rt.job.rank

    def get_world_size(self):
        """The number of ranks in the job."""
        return self._rt.job.size

    def get_node_id(self):
        """A hex id of this node (ranks sharing one object store share it): what
        ``NodeAffinitySchedulingStrategy`` and ``nodes()`` take and give. (The driver of
        ``python script.py``, a node of its own for MPI, gives its host's node.)"""
        job = self._rt.job
        return job.node_id(executing_node(job, job.node_index))

    @property
    def node_id(self):
        """This node's id as Ray's (deprecated) ``node_id`` gives it: ``.hex()`` is
        :meth:`get_node_id`."""
        return NodeID(self.get_node_id())

    def get_task_id(self):
        """The id of the task running in this thread, or None in the driver."""
        spec = current.current_task()
        return f"{spec.task_id:016x}" if spec is not None else None

    def is_canceled(self):
        """Whether the task running in this thread was cancelled (Ray's spelling)."""
        spec = current.current_task()
        return spec is not None and self._rt.is_cancelled(spec.task_id)

    def get_assigned_resources(self):
        """The resources the task running here asked for (``{"CPU": 1.0}``), or in an actor
        method those its actor holds; ``{}`` in the driver."""
        spec = current.current_task()
        return dict(spec.resources) if spec is not None else {}

    def get_accelerator_ids(self):
        """``{"GPU": [ids]}``: the GPUs pinned to this rank, as strings (Ray's form)."""
        return {"GPU": [str(gpu) for gpu in gpu_ids()]}

    def get_actor_id(self):
        """The id of the actor whose method is running here, or None outside actors."""
        call = current_call.get()
        return f"{call.actor_id:016x}" if call is not None else None

    def get_job_id(self):
        return self._rt.job.job_tag.split("-")[0].rjust(8, "0")[-8:]

    def get_worker_id(self):
        return f"{self._rt.job.rank:08x}"

    def get_namespace(self):
        return self._namespace

    @property
    def namespace(self):
        return self._namespace

    def get(self):
        return {"job_id": self.get_job_id(), "node_id": self.get_node_id(),
                "task_id": self.get_task_id(), "rank": self.get_rank()}
