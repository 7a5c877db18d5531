"""Actors (floor 4, beside ``head``, which it never imports; imports ``core``, ``store``,
``wire``, ``config``, ``exceptions``).

Owns both sides of actors on every rank: the caller's side (``client.py``: creating actors,
calling them, where each lives, releasing an actor when its last handle is gone) and the
hosting side (``host.py``: instances, their mailboxes (``mailbox.py``), the threads that run
calls, kill and release). The head's record of actors is ``head/directory.py``.
"""
