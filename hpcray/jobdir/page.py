"""The job's dashboard page: ``dashboard.html``, one self-contained file (inline CSS and
JavaScript, nothing loaded from the network), so that it opens from disk on a laptop.

The template (``dashboard.html`` next to this module, shipped as package data) holds the
placeholder ``/*HPCRAY_SNAPSHOT*/null``. Without a snapshot in its place the page loads
``status.js`` from its folder every 2 s (what the head writes every second) and shows what it
holds; with one it shows that, and keeps loading ``status.js`` only while that snapshot's job
is still ``RUNNING``. The head writes the page without a snapshot at the start of a job and
with the final one at the end.
"""
import os
from importlib import resources

from . import layout

PLACEHOLDER = "/*HPCRAY_SNAPSHOT*/null"


def template():
    """The page as shipped: the text of the package's ``jobdir/dashboard.html``."""
    return resources.files(__package__).joinpath(layout.DASHBOARD).read_text(encoding="utf-8")


def inline_json(snapshot):
    """``snapshot`` as JSON that is safe inside an HTML ``<script>`` element: ``</`` becomes
    ``<\\/`` (so no ``</script>`` in the data ends the element) and ``<!--`` becomes
    ``\\u003c!--`` (which would otherwise change how the browser reads the element's end).
    Both are the same string to JavaScript."""
    return layout.to_json(snapshot).replace("</", "<\\/").replace("<!--", "\\u003c!--")


def render(snapshot=None):
    """The page's HTML, with ``snapshot`` (a dict, see docs/job-directory.md) inlined; with
    None, the page that waits for and follows ``status.js``."""
    page = template()
    if snapshot is None:
        return page
    return page.replace(PLACEHOLDER, inline_json(snapshot), 1)


def write(job_dir, snapshot=None):
    """Write ``job_dir/dashboard.html`` (0600, atomically: a reader never sees half of it)
    with ``snapshot`` inlined, or none. Returns the page's path.

    Raises:
        OSError: it cannot be written.
    """
    path = os.path.join(job_dir, layout.DASHBOARD)
    layout.write_atomically(path, render(snapshot))
    return path
