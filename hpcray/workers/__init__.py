"""Worker processes: where tasks and actor methods run, so that user code never takes its
rank down.

Each executing rank forks a *zygote* right after its node's store exists (``zygote.py``);
the zygote forks worker processes on request. A worker inherits the store's shared mapping
(zero-copy reads and writes), never calls MPI, and talks to its rank over a Unix socket
(``channel.py``, messages of ``protocol.py``).

* rank side: ``pool.py`` (the ``workers`` role: which process runs what, what each holds,
  the requests a worker makes of the runtime, what happens when one dies), with
  ``memory.py`` (how full the node's memory is; when the memory monitor ends a task);
* worker side: ``link.py`` (the runtime the public API talks to inside a worker: every call
  becomes a request to the rank) and ``process.py`` (the worker's loop: tasks, actors).

On floor 5, above ``actors`` and ``head``: may import ``actors``, ``core``, ``store``, ``wire``,
``config``, ``exceptions``; imported by ``launch`` (which starts the pool and is the worker's
entry point).
"""
