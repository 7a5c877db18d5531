"""Each node's shared memory (floor 2: imports ``wire`` and ``exceptions``).

Owns the node's object store (``node_store.py``: one MPI shared-memory window, pages, slots,
spilling, zero-copy views, the node's directory of copies), the node's load table
(``node_load.py``), copies of other nodes' objects into this node's store
(``copies.py``: one-sided ``MPI_Rget`` or two-sided) and the broadcast trees that spread a
much-wanted object (``copy_tree.py``, pure bookkeeping).
"""
