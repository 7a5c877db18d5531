"""``hpcray status | dashboard | list | summary [JOB_DIR]``: a job seen from its directory,
while it runs (from a login node) or after it ended. Every failure is a one-line message and
exit status 2, never a traceback."""
import argparse
import functools
import http.server
import json
import os
import sys

from ..exceptions import JobDirError
from . import layout, page, views

COMMANDS = ("status", "dashboard", "list", "summary")


def _parser(command):
    parser = argparse.ArgumentParser(prog=f"hpcray {command}")
    if command in ("list", "summary"):
        kinds = views.KINDS if command == "list" else views.SUMMARIES
        parser.add_argument("kind", choices=kinds, help="what to show")
    parser.add_argument("job_dir", nargs="?", default=None,
                        help="the job directory (default: the newest ./hpcray-*)")
    if command == "list":
        parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                            help="keep records whose KEY is VALUE (also !=, >, <, >=, <=); "
                                 "repeat to combine")
        parser.add_argument("--limit", type=int, default=views.DEFAULT_LIMIT)
    if command in ("list", "summary", "status"):
        parser.add_argument("--format", choices=("table", "json"), default="table")
    if command == "dashboard":
        parser.add_argument("--port", type=int, default=8265,
                            help="port on 127.0.0.1 (default 8265, Ray's; 0: any free one)")
        parser.add_argument("--print", action="store_true", dest="print_only",
                            help="only print the page's path (open it in a browser)")
    return parser


def main(command, argv):
    """Run one command; return its exit status."""
    options = _parser(command).parse_args(argv)
    try:
        job_dir = layout.find(options.job_dir)
        if command == "dashboard":
            return dashboard(job_dir, options.port, options.print_only)
        snapshot = layout.read_snapshot(job_dir)
        if command == "status":
            text = (json.dumps(snapshot, indent=1) + "\n" if options.format == "json"
                    else views.status_text(snapshot))
        elif command == "summary":
            result = views.summary(snapshot, options.kind)
            text = (json.dumps(result, indent=1) + "\n" if options.format == "json"
                    else _summary_text(options.kind, result))
        else:
            filters = [views.parse_filter(text) for text in options.filter]
            items = views.select(views.records(snapshot, options.kind), filters,
                                 options.limit)
            text = (json.dumps(items, indent=1) + "\n" if options.format == "json"
                    else views.table(items, views.LIST_COLUMNS[options.kind]) + "\n")
        sys.stdout.write(text)
        return 0
    except (JobDirError, ValueError) as error:
        sys.stderr.write(f"hpcray {command}: {error}\n")
        return 2
    except BrokenPipeError:                    # (| head)
        return 0


def _summary_text(kind, result):
    cluster = result["cluster"]
    lines = []
    for name, entry in cluster["summary"].items():
        counts = entry.get("state_counts") or entry.get("task_state_counts") or {}
        extra = ""
        if kind == "objects":
            extra = f" {entry['total_objects']} objects, {entry['total_size_mb']:.1f} MiB"
        lines.append(f"{name}: " + ", ".join(f"{state} {count}"
                                             for state, count in counts.items()) + extra)
    totals = {key: value for key, value in cluster.items() if key.startswith("total")}
    lines.append(", ".join(f"{key} {value:g}" if isinstance(value, float) else
                           f"{key} {value}" for key, value in totals.items()))
    return "\n".join(lines) + "\n"


def dashboard(job_dir, port, print_only):
    """Serve the job directory on 127.0.0.1 (the page refreshes itself from status.js), or
    print the page's path."""
    path = os.path.join(job_dir, layout.DASHBOARD)
    if not os.path.exists(path):
        page.write(job_dir)                    # (a job directory from before the page)
    if print_only:
        sys.stdout.write(f"{path}\n")
        return 0
    handler = functools.partial(_QuietHandler, directory=job_dir)
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        raise JobDirError(f"cannot listen on 127.0.0.1:{port} ({error.strerror}); try "
                          f"--port 0, or --print to open the file itself") from None
    bound = server.server_address[1]
    sys.stdout.write(f"hpcray dashboard: http://127.0.0.1:{bound}/{layout.DASHBOARD}\n"
                     f"  (from your laptop: ssh -L {bound}:127.0.0.1:{bound} <this host>, "
                     f"then open that address; Ctrl-C stops)\n  or open {path}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the job directory only, without a log line per request."""

    def log_message(self, format, *args):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")    # status.js changes every second
        super().end_headers()
