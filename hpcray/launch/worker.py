"""A worker process's entry: what the zygote's child runs (``workers/zygote.py``).

It makes the worker's :class:`~hpcray.workers.link.Link` the process's runtime (the
session finds it there: ``session.py``), so that the public API inside tasks talks to the
rank, captures what the process prints for the driver (``core/output.py``), then runs the
worker's loop (``workers/process.py``) until the rank lets it go; it never returns.
"""
from ..actors.host import current_call
from ..core import current, output
from ..workers import process
from ..workers.channel import Channel
from ..workers.link import Link


def current_spec():
    """The task or actor call the calling thread runs (an async actor's call lives in its
    coroutine's context, not on a thread's task stack), or None."""
    return current.current_task() or current_call.get()


def worker_entry(sock, setup):
    link = Link(Channel(sock), setup)
    current.set_runtime(link)
    output.capture(True, current_spec, output.Flusher(link.flush_output).poke)
    process.serve(link)
