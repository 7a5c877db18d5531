"""The wire: what ranks say to each other, and how it travels (floor 1: imports only
``exceptions`` of hpcray).

Owns the protocol (``messages.py``: the table of message kinds, one constructor each), what
messages carry (``specs.py``: TaskSpec, ActorSpec, actor states; ``objects.py``: the object
records; ``ids.py``: object ids), turning values into objects and back
(``serialization.py``), and point-to-point MPI traffic with its polling discipline
(``transport.py``).
"""
