"""The per-rank runtime (floor 3: imports ``store``, ``wire``, ``config``, ``exceptions``).

Owns one rank's roles, each a class in its own module, wired together by ``runtime.py``:
the progress loop and dispatch (``progress.py``), reference counting (``refcount.py``),
waiting (``waiting.py``), ownership and freeing (``ownership.py``), object access:
``get``/``wait``/futures (``access.py``), executing tasks (``execution.py``, running one call:
``invoke.py``), the one submission path and ``put`` (``submission.py``), questions to the
head (``requests.py``) and the rank's life: sessions, leaving (``lifecycle.py``). Also
``ObjectRef`` (``object_ref.py``), logical resources (``resources.py``), the job as a rank
sees it (``job_view.py``) and what this process and thread run (``current.py``).
"""
