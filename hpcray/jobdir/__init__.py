"""The job directory: where a job leaves what can be seen of it, and what reads it back.

On floor 1: it may import only ``config``, ``exceptions`` and the standard library. The
runtime writes here (the head its status snapshots and the final report, each rank its log),
and the command line (``hpcray status``, ``hpcray dashboard``, ``hpcray list``,
``hpcray summary``) and ``hpcray.util.state`` read it, with or without a running job.

* ``layout.py``: the paths, creating the directory, writing and reading a snapshot.
* ``views.py``: Ray's state-API records and summaries, filters, and the terminal summary
  (``hpcray status``), all computed from a snapshot.
* ``page.py`` + ``dashboard.html``: the self-contained page.
* ``commands.py``: ``hpcray status | dashboard | list | summary`` (``dashboard`` serves the
  directory on 127.0.0.1).
"""
