"""Starting and ending a job (floor 5: imports ``actors``, ``head``, ``core``, ``store``,
``wire``, ``config``, ``exceptions``).

Owns joining the MPI job and building each rank's runtime with its roles (``join.py``), the
session of a process: ``init``/``shutdown`` (``session.py``), the embedded default for
``python script.py`` (``embedded.py``, ``spawned.py``), the launcher ``python -m hpcray``
(``cli.py``), what each rank offers and GPU pinning (``resources.py``), what the job exposes
on the network (``network.py``: MPI transports chosen before ``MPI_Init``, the launcher's
sockets not kept), stop signals from Slurm (``preemption.py``) and ``hpcray submit``
(``submit.py``).
"""
