"""Which node serves each new copy of an object that many nodes want: a broadcast tree.

An object lives on its home node (where it was written). Without a tree, every node that needs
it reads it from the home node: with ``n`` nodes asking at once the home node's link carries
``n`` copies. Here the home node's first rank keeps, for each object being copied, the nodes
that already hold a complete copy (*sources*, itself first) and how many copies each is
serving. A request goes to a source with room (at most ``fanout`` copies at a time each); when
none has room it waits, and each finished copy makes one more source. With ``fanout=1`` the
sources double every round: ``n`` nodes have the object after about ``log2(n + 1)`` copy times
(a binomial tree), and no node serves more than one copy at a time.

The tree forms only under contention: a lone request goes straight to the home node. The state
of an object is dropped once nothing is in flight or waiting for it, so that sources whose
copy was since freed are not remembered; a source that answers it no longer has the copy is
struck off and the request is placed again.

This module is the bookkeeping only (no MPI): ``copies.py`` sends the messages.
"""
from collections import deque


class CopyTrees:
    """The home node's view of the copies of its objects in flight (one per object)."""

    def __init__(self, home, fanout):
        self.home = home                 # this rank: the source of the original
        self.fanout = fanout             # copies a source serves at once
        self.trees = {}                  # object id -> _Tree

    def request(self, object_id, requester, requester_leader):
        """A node asks for a copy; return the ``[(requester, source)]`` to start now."""
        tree = self.trees.get(object_id)
        if tree is None:
            tree = self.trees[object_id] = _Tree(self.home)
        tree.load.pop(requester_leader, None)  # it asks: whatever copy it had is gone
        tree.queue.append(requester)
        return self._assign(object_id, tree)

    def done(self, object_id, source, holder):
        """A copy from ``source`` finished; ``holder`` (its node's first rank, or None when
        the copy cannot be shared) may serve the next ones."""
        tree = self.trees.get(object_id)
        if tree is None:
            return []
        if source in tree.load:
            tree.load[source] -= 1
        if holder is not None:
            tree.load.setdefault(holder, 0)
        return self._assign(object_id, tree)

    def gone(self, object_id, source, requester):
        """``source`` no longer has the object: strike it off and place ``requester`` again."""
        tree = self.trees.get(object_id)
        if tree is None:
            tree = self.trees[object_id] = _Tree(self.home)
        if source != self.home:
            tree.load.pop(source, None)
        tree.queue.appendleft(requester)
        return self._assign(object_id, tree)

    def _assign(self, object_id, tree):
        started = []
        while tree.queue:
            # the least busy source; of equals the newest copy, so the home node (often the
            # driver's) serves no more than it must
            source = min(reversed(tree.load), key=tree.load.__getitem__)
            if tree.load[source] >= self.fanout:
                break
            tree.load[source] += 1
            started.append((tree.queue.popleft(), source))
        if not tree.queue and not any(tree.load.values()):
            del self.trees[object_id]
        return started

    def forget_rank(self, rank):
        """``rank`` died: it serves no copy and waits for none any more."""
        for object_id, tree in list(self.trees.items()):
            if rank != self.home:
                tree.load.pop(rank, None)
            while rank in tree.queue:
                tree.queue.remove(rank)
            if not tree.queue and not any(tree.load.values()):
                del self.trees[object_id]

    def in_flight(self):
        return sum(sum(tree.load.values()) + len(tree.queue) for tree in self.trees.values())


class _Tree:
    __slots__ = ("load", "queue")

    def __init__(self, home):
        self.load = {home: 0}            # source rank -> copies it serves now (home first)
        self.queue = deque()             # requesters waiting for a source
