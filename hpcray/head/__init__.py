"""The head's roles, on rank 0 only (floor 4, beside ``actors``, which it never imports;
imports ``core``, ``store``, ``wire``, ``config``, ``exceptions``).

Owns the global scheduler (``scheduler.py``, pure state) and the service that drives it
(``service.py``: placing tasks, SPILL/DONE/BLOCKED, cancel at the head, sessions, the end of
the job), the actor directory (``directory.py``: placement, names, lookups) and the registry
of collective groups (``groups.py``).
"""
