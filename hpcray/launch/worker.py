"""A worker process's entry: what the zygote's child runs (``workers/zygote.py``).

It makes the worker's :class:`~hpcray.workers.link.Link` the process's runtime (the
session finds it there: ``session.py``), so that the public API inside tasks talks to the
rank, then runs the worker's loop (``workers/process.py``) until the rank lets it go; it
never returns.
"""
from ..core import current
from ..workers import process
from ..workers.channel import Channel
from ..workers.link import Link


def worker_entry(sock, setup):
    link = Link(Channel(sock), setup)
    current.set_runtime(link)
    process.serve(link)
