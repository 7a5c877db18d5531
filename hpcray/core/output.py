"""What tasks and actors print, on its way to the driver's terminal; progress bars; the
progress line of a long ``get``.

As in Ray, what a task or an actor prints shows on the driver with a prefix naming where it
came from, ``(f pid=1234, rank=2, node=host) text`` (``(Counter pid=...)`` for an actor's
methods), stdout to stdout and stderr to stderr, repeated lines folded into one
``[repeated 9x across cluster]`` (Ray's ``LogDeduplicator``)::

    worker process (all it prints)       its rank                          head (rank 0)
    ---------------------------------    ------------------------------    -----------------
    Capture (sys.stdout / sys.stderr):   WorkerPool.on_output:
    whole lines -> buffer (records)        buffer.put_back
    ----- OUTPUT (socket) ahead of its     in-rank tasks (threads): Capture
          next message, or after 0.2 s -->   -> buffer
          (Flusher)                      Output.forward (turn hook, >= 0.1 s
                                           after the first record, or at once
                                           ahead of a task's results): the
                                           rank's log (logs/rank-N.log),
                                           then OUTPUT (MPI) --------------> Output.on_output
                                                                             -> Display: dedup,
                                                                             prefix, print

A *record* is a plain tuple: ``(LINES, pid, name, is_err, [line, ...])`` or ``(BAR, pid,
name, state)`` (a ``tqdm_ray`` bar's state, shown by the driver as one line, never as text).
A task that prints nothing costs nothing: no record, no message.

Everything here is per process: :data:`buffer` (what waits to go), the capture of the
standard streams (:func:`capture`), and :data:`display`, the driver's terminal, which also
draws bars and the progress line of a long ``get``/``wait`` (:class:`WaitProgress`). On a
terminal bars and that line are redrawn in place (on stderr, as tqdm does); otherwise (a
Slurm output file) each is a plain line now and then, never a carriage return or an escape
code.
"""
import builtins
import io
import os
import re
import shutil
import sys
import threading
import time

from ..jobdir import layout
from ..wire import messages

LINES, BAR = "l", "b"
FORWARD_DELAY = 0.1       # a rank passes records on this long after the first (batches)
WORKER_FLUSH = 0.2        # a worker process sends records after this long at most
PARTIAL_LIMIT = 1 << 16   # characters of a line without its newline kept before it goes
DEDUP_WINDOW = 5.0        # seconds Ray's deduplicator aggregates a line (RAY_DEDUP_LOGS_AGG..)
BAR_PLAIN_INTERVAL = 5.0  # a bar's line when the driver's stderr is no terminal: this often
WAIT_AFTER = 3.0          # a get/wait shows its progress line once it waited this long
WAIT_PLAIN_INTERVAL = 10.0    # ... as a plain line this often (no terminal)
WAIT_TTY_INTERVAL = 0.5       # ... redrawn this often (terminal)
CYAN, GREEN, RESET = "\x1b[36m", "\x1b[32m", "\x1b[0m"
DEDUP_HINT = (" (hpcray deduplicates logs by default, as Ray does. Set HPCRAY_DEDUP_LOGS=0 to "
              "disable log deduplication.)")


# ---------------------------------------------------------------------- what waits to go
class Buffer:
    """The records of this process that wait to go to its rank (a worker process) or to the
    head (a rank). Thread-safe; ``pending`` is read without the lock (hot paths)."""

    def __init__(self):
        self.lock = threading.RLock()          # (a __del__ that prints may run inside)
        self.records = []
        self.pending = False
        self.since = 0.0                       # when the first record waiting came
        self.held = False                      # a capture keeps text with no newline yet
        self.on_pending = None                 # fn(): the buffer is no longer empty

    def _added_locked(self):
        if self.pending:
            return False
        self.pending = True
        self.since = time.monotonic()
        return True

    def add_lines(self, pid, name, is_err, lines):
        """Whole lines written by ``name`` (a task's, an actor's or "") in process ``pid``."""
        with self.lock:
            records = self.records
            if records:
                last = records[-1]
                if last[0] == LINES and last[2] == name and last[3] == is_err \
                        and last[1] == pid:
                    last[4].extend(lines)
                    return
            records.append((LINES, pid, name, is_err, list(lines)))
            first = self._added_locked()
        if first and self.on_pending is not None:
            self.on_pending()

    def add_bar(self, pid, name, state):
        """A progress bar's new state (``experimental/tqdm_ray.py``)."""
        with self.lock:
            self.records.append((BAR, pid, name, state))
            first = self._added_locked()
        if first and self.on_pending is not None:
            self.on_pending()

    def take(self):
        """The records waiting (oldest first), and none from now on."""
        with self.lock:
            records, self.records = self.records, []
            self.pending = False
        return records

    def put_back(self, records):
        """Records a worker process sent its rank: to pass on with the rank's own."""
        if not records:
            return
        with self.lock:
            self.records.extend(records)
            self._added_locked()


buffer = Buffer()                              # this process's


# ---------------------------------------------------------------------- names
_task_names = {}                               # spec.name -> the name shown
actor_names = {}                               # actor id -> repr of an actor that has one


def display_name(spec):
    """The name in the prefix: a task's function name (``f``), an actor's class name
    (``Counter``), or the ``repr`` of an actor whose class defines ``__repr__`` (as Ray)."""
    if spec.actor_id is not None:
        name = actor_names.get(spec.actor_id)
        if name is not None:
            return name
        key = ("actor", spec.name)
        name = _task_names.get(key)
        if name is None:                       # "mod.Counter.incr" -> "Counter"
            name = _task_names[key] = spec.name.rpartition(".")[0].rpartition(".")[2]
        return name
    name = _task_names.get(spec.name)
    if name is None:                           # "__main__.outer.<locals>.f" -> "f"
        name = _task_names[spec.name] = spec.name.rpartition(".")[2]
    return name


def name_actor(actor_id, instance):
    """An actor was built: its prefix is its ``repr`` if its class defines one (Ray)."""
    if type(instance).__repr__ is object.__repr__:
        return
    try:
        actor_names[actor_id] = repr(instance)
    except Exception:                          # a broken __repr__ keeps the class name
        pass


def prefix(name, pid, rank, node):
    """``(f pid=1234, rank=2, node=host)``; without a name ``(pid=1234, ...)``."""
    head = f"{name} pid=" if name else "pid="
    return f"({head}{pid}, rank={rank}, node={node})"


# ---------------------------------------------------------------------- the capture
class Capture(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` of a process that runs tasks: whole lines written by
    a task (or, in a worker process, by anything) become records in :data:`buffer`; other
    writes go to the stream it replaced (``original``)."""

    def __init__(self, original, is_err, settings):
        super().__init__()
        self.original = original
        self.is_err = is_err
        self.settings = settings
        self.partial = {}                      # thread ident -> text without its newline
        self.lock = threading.RLock()

    def write(self, text):
        settings = self.settings
        spec = settings.resolve()
        if spec is None and not settings.everything:
            return self.original.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if spec is not None:
            name = settings.last_name = display_name(spec)
        else:
            name = settings.last_name          # a thread of no task: the latest task's name
        size = len(text)
        ident = threading.get_ident()
        with self.lock:
            held = self.partial.pop(ident, None)
            if held is not None:
                text = held + text
            if "\n" not in text:
                if "\r" in text:               # redrawn in place: only the last state
                    text = "\r" + text.rpartition("\r")[2]
                if len(text) < PARTIAL_LIMIT:
                    self.partial[ident] = text
                    buffer.held = True
                    return size
                lines = [text]
            else:
                lines = text.split("\n")
                rest = lines.pop()
                if rest:
                    self.partial[ident] = rest
                    buffer.held = True
        buffer.add_lines(settings.pid, name, self.is_err, [_visible(line) for line in lines])
        return size

    def end_line(self, force=True):
        """The calling thread's text without a newline goes as a line (a flush, or its task
        is over); one redrawn in place (``\\r``) waits for its end unless ``force``."""
        if not self.partial:
            return
        ident = threading.get_ident()
        with self.lock:
            held = self.partial.get(ident)
            if held is None or (not force and "\r" in held):
                return
            del self.partial[ident]
        settings = self.settings
        buffer.add_lines(settings.pid, settings.last_name, self.is_err, [_visible(held)])

    def flush(self):
        if self.partial:
            self.end_line(force=False)
        self.original.flush()

    def isatty(self):
        if self.settings.everything or self.settings.resolve() is not None:
            return False                       # what a task prints goes to the driver
        return self.original.isatty()

    def fileno(self):
        return self.original.fileno()

    def writable(self):
        return True

    @property
    def encoding(self):
        return getattr(self.original, "encoding", "utf-8")

    @property
    def errors(self):
        return getattr(self.original, "errors", "strict")

    @property
    def buffer(self):
        return self.original.buffer

    def __getattr__(self, name):               # what else the replaced stream has
        if name == "original":
            raise AttributeError(name)
        return getattr(self.original, name)


def _visible(line):
    """What a terminal would show of a line redrawn with carriage returns."""
    if "\r" in line:
        line = line.rstrip("\r").rpartition("\r")[2]
    return line


class CaptureSettings:
    """How this process's captures decide: ``everything`` (a worker process: all it prints)
    or only what tasks print (a rank that runs tasks on its threads); ``resolve()``: the
    spec of the task (or actor call) the calling thread runs, or None."""

    def __init__(self, everything, resolve):
        self.everything = everything
        self.resolve = resolve
        self.pid = os.getpid()
        self.last_name = ""


_settings = None


def capture(everything, resolve, on_pending=None):
    """Replace ``sys.stdout`` and ``sys.stderr`` by captures (once per process; later calls
    only update the settings). ``on_pending``: called when records start waiting (a
    worker process's :class:`Flusher`; a rank forwards from its turns instead)."""
    global _settings
    buffer.on_pending = on_pending
    if isinstance(sys.stdout, Capture) and isinstance(sys.stderr, Capture):
        settings = sys.stdout.settings
        settings.everything, settings.resolve = everything, resolve
        settings.pid = os.getpid()
        _settings = settings
        return
    _settings = settings = CaptureSettings(everything, resolve)
    sys.stdout = Capture(sys.stdout, False, settings)
    sys.stderr = Capture(sys.stderr, True, settings)


def end_lines():
    """The calling thread's task is over: what it wrote without a newline goes too."""
    held = False
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, Capture) and stream.partial:
            stream.end_line()
            held = held or bool(stream.partial)
    buffer.held = held


def emit_bar(state):
    """A progress bar's state (``hpcray.experimental.tqdm_ray``): from a task, a record for
    the driver; on the driver itself, drawn at once."""
    settings = _settings
    if settings is not None:
        spec = settings.resolve()
        if spec is not None or settings.everything:
            name = display_name(spec) if spec is not None else settings.last_name
            buffer.add_bar(settings.pid, name, state)
            return
    display.bar(None, state)


class Flusher:
    """A worker process's timer: records that wait go to the rank after ``WORKER_FLUSH``
    seconds at most, even while the task keeps running (one thread, started with the first
    record, asleep while there is nothing to send)."""

    def __init__(self, send):
        self.send = send
        self.event = threading.Event()
        self.thread = None
        self.lock = threading.Lock()

    def poke(self):
        """Records started waiting (any thread)."""
        self.event.set()
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, daemon=True,
                                                   name="hpcray-output")
                    self.thread.start()

    def _loop(self):
        while True:
            if not self.event.wait(60.0):
                continue
            time.sleep(WORKER_FLUSH)
            self.event.clear()
            if buffer.pending:
                try:
                    self.send()
                except OSError:                # the rank is gone: so is this process soon
                    return


# ---------------------------------------------------------------------- Ray's deduplication
NUMBERS = re.compile(r"(\d+|0x[0-9a-fA-F]+)")


def canonical(line):
    """The line without its words that hold numbers (they differ between workers)."""
    return " ".join(word for word in line.split() if not NUMBERS.search(word))


class LogDeduplicator:
    """Ray's ``LogDeduplicator`` (``ray/_private/ray_logging``): a line is printed at once;
    the same line (numbers aside) from *another* process within ``window`` seconds is
    counted instead, and once the window is over the latest of them is printed with
    ``[repeated Nx across cluster]`` (one alone is printed as it is). Lines of one process
    are never folded. Pure: entries in, ``(meta, line, repeated)`` out; ``meta`` is
    ``(name, pid, rank, node)``."""

    def __init__(self, window=DEDUP_WINDOW):
        self.window = window
        self.recent = {}                       # key -> [since, count, line, meta, sources]

    def deduplicate(self, meta, lines, now):
        """What to print now of ``lines`` from ``meta``'s process, and of lines folded
        earlier whose window ended."""
        out = []
        source = (meta[2], meta[1])
        recent = self.recent
        for line in lines:
            key = canonical(line)
            if not key:
                out.append((meta, line, 0))
                continue
            state = recent.get(key)
            if state is None:
                recent[key] = [now, 0, line, meta, {source}]
                out.append((meta, line, 0))
                continue
            state[4].add(source)
            if len(state[4]) > 1:
                state[1] += 1
                state[2] = line
                state[3] = meta
            else:
                out.append((meta, line, 0))
        if recent:
            out.extend(self.expire(now))
        return out

    def expire(self, now):
        """Lines whose window ended: a count of several printed with it (and aggregated
        again from now), a single one printed as it is."""
        out = []
        recent = self.recent
        while recent:
            key = next(iter(recent))
            state = recent[key]
            if now - state[0] < self.window:
                break
            del recent[key]
            if state[1] > 1:
                out.append((state[3], state[2], state[1]))
                state[0], state[1] = now, 0
                recent[key] = state
            elif state[1] == 1:
                out.append((state[3], state[2], 0))
        return out

    def due(self):
        """When the oldest window ends (monotonic), or None."""
        if not self.recent:
            return None
        return next(iter(self.recent.values()))[0] + self.window

    def flush(self):
        """Every line still counted (the end of the job)."""
        out = []
        for state in self.recent.values():
            if state[1] > 1:
                out.append((state[3], state[2], state[1]))
            elif state[1] == 1:
                out.append((state[3], state[2], 0))
        self.recent.clear()
        return out


# ---------------------------------------------------------------------- bars
def _clock(seconds):
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _count(value):
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def bar_text(state, width=20):
    """One line for a bar's state, tqdm-like: ``desc: 37%|#######             | 37/100
    [00:12<00:21, 3.00it/s]`` (no total: ``desc: 37it [00:12, 3.00it/s]``)."""
    n = state.get("x") or 0
    total = state.get("total")
    unit = state.get("unit") or "it"
    elapsed = state.get("elapsed") or 0.0
    rate = n / elapsed if elapsed > 0 and n else None
    rate_text = f"{rate:.2f}{unit}/s" if rate else f"?{unit}/s"
    desc = state.get("desc") or ""
    head = f"{desc}: " if desc else ""
    if total:
        fraction = min(max(n / total, 0.0), 1.0)
        filled = int(fraction * width)
        remaining = (total - n) / rate if rate else None
        return (f"{head}{fraction * 100:3.0f}%|{'#' * filled}{' ' * (width - filled)}| "
                f"{_count(n)}/{_count(total)} [{_clock(elapsed)}<{_clock(remaining)}, "
                f"{rate_text}]")
    return f"{head}{_count(n)}{unit} [{_clock(elapsed)}, {rate_text}]"


class BarView:
    """A bar as the driver shows it."""
    __slots__ = ("meta", "state", "shown_at", "shown_x")

    def __init__(self, meta, state, now):
        self.meta = meta
        self.state = state
        self.shown_at = now                    # when its last plain line was printed
        self.shown_x = None                    # its count then


# ---------------------------------------------------------------------- the driver's terminal
def _real(stream):
    return stream.original if isinstance(stream, Capture) else stream


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Display:
    """The driver's terminal: lines of tasks and actors (deduplicated, prefixed), bars, the
    progress line of a long wait. On a terminal, bars and that line form a region at the
    bottom of stderr that is cleared before other text and drawn again after; otherwise
    they are plain lines. Thread-safe (its own lock, taken last: it never takes another)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.dedup = True
        self.deduplicators = {False: LogDeduplicator(), True: LogDeduplicator()}
        self.hinted = False
        self.bars = {}                         # (source, uuid) -> BarView
        self.status = None                     # the wait's line, on a terminal
        self.drawn = 0                         # lines of the region on the terminal
        self.due = None                        # when tick() has something to do (monotonic)
        self.print_before = None               # builtins.print while bars are drawn

    def configure(self, dedup):
        """``dedup``: HPCRAY_DEDUP_LOGS."""
        self.dedup = dedup

    # ------------------------------------------------------------------ lines
    def lines(self, meta, is_err, lines, now=None):
        """Lines a task or an actor printed (``meta``: name, pid, rank, node)."""
        with self.lock:
            if self.dedup:
                now = time.monotonic() if now is None else now
                entries = self.deduplicators[is_err].deduplicate(meta, lines, now)
                self._schedule(now)
            else:
                entries = [(meta, line, 0) for line in lines]
            self._print(is_err, entries)

    def _print(self, is_err, entries):
        if not entries:
            return
        out = _real(sys.stderr if is_err else sys.stdout)
        color = _isatty(out)
        text = []
        for meta, line, repeated in entries:
            tag = prefix(*meta)
            if color:
                tag = f"{CYAN}{tag}{RESET}"
            if repeated:
                suffix = f" [repeated {repeated}x across cluster]"
                if not self.hinted:
                    self.hinted = True
                    suffix += DEDUP_HINT
                if color:
                    suffix = f"{GREEN}{suffix}{RESET}"
                line += suffix
            text.append(f"{tag} {line}\n")
        self.write(out, "".join(text))

    def write(self, out, text):
        """Write text to ``out`` around the region (cleared before, drawn again after)."""
        with self.lock:
            region = _real(sys.stderr)
            hidden = self._hide(region)
            try:
                out.write(text)
                out.flush()
            except (OSError, ValueError):      # a closed or broken stream: nothing to do
                pass
            if hidden:
                self._draw(region)

    # ------------------------------------------------------------------ bars
    def bar(self, meta, state, now=None):
        """A bar's new state; ``meta`` as for :meth:`lines`, None for the driver's own."""
        now = time.monotonic() if now is None else now
        key = (None if meta is None else (meta[2], meta[1]), state.get("uuid"))
        with self.lock:
            view = self.bars.get(key)
            if view is None:
                view = self.bars[key] = BarView(meta, state, now)
            view.state = state
            region = _real(sys.stderr)
            tty = _isatty(region)
            if state.get("closed"):
                del self.bars[key]
                self.write(region, self._bar_line(view, tty) + "\n")
                if tty and not self.bars:
                    self._unpatch_print()
                return
            if tty:
                self._hide(region)
                self._draw(region)
            elif now - view.shown_at >= BAR_PLAIN_INTERVAL:
                self._show_plain(view, now, region)
            self._schedule(now)

    def _bar_line(self, view, tty, width=None):
        """A bar's line, cut to ``width`` characters shown (its prefix colored on a
        terminal)."""
        tag = "" if view.meta is None else prefix(*view.meta) + " "
        line = tag + bar_text(view.state)
        if width is not None:
            line = _fit(line, width)
        if tty and tag and line.startswith(tag):
            line = f"{CYAN}{tag[:-1]}{RESET} {line[len(tag):]}"
        return line

    def _show_plain(self, view, now, region):
        view.shown_at = now
        if view.shown_x == view.state.get("x"):
            return                             # no progress since: nothing new to say
        view.shown_x = view.state.get("x")
        self.write(region, self._bar_line(view, False) + "\n")

    # ------------------------------------------------------------------ the wait's line
    def wait_status(self, text, final=False):
        """The progress line of a long get/wait: redrawn in place on a terminal, a plain
        line otherwise; ``final``: the wait is over (the terminal's line goes away)."""
        with self.lock:
            region = _real(sys.stderr)
            if _isatty(region):
                self._hide(region)
                self.status = None if final else text
                self._draw(region)
            else:
                self.write(region, text + "\n")

    # ------------------------------------------------------------------ the region
    def _hide(self, region):
        if not self.drawn:
            return False
        try:
            region.write("\r\x1b[J")           # from the region's first line down
        except (OSError, ValueError):
            pass
        self.drawn = 0
        return True

    def _draw(self, region):
        if not self.bars and self.status is None:
            return
        width = max(shutil.get_terminal_size((100, 24)).columns - 1, 20)
        lines = [self._bar_line(view, True, width) for view in self.bars.values()]
        if self.status is not None:
            lines.append(_fit(self.status, width))
        if self.bars:
            self._patch_print()
        text = "".join(f"\x1b[2K{line}\n" for line in lines)
        try:                                   # then back to the region's first line
            region.write(f"{text}\x1b[{len(lines)}A\r")
            region.flush()
        except (OSError, ValueError):
            return
        self.drawn = len(lines)

    def _patch_print(self):
        """While bars are drawn, the driver's ``print`` clears and redraws them (Ray's
        ``tqdm_ray`` patches ``print`` the same way)."""
        if self.print_before is None and builtins.print is not safe_print:
            self.print_before = builtins.print
            builtins.print = safe_print

    def _unpatch_print(self):
        if self.print_before is not None:
            if builtins.print is safe_print:
                builtins.print = self.print_before
            self.print_before = None

    # ------------------------------------------------------------------ time
    def _schedule(self, now):
        due = [self.deduplicators[False].due(), self.deduplicators[True].due()]
        if self.bars and not _isatty(_real(sys.stderr)):
            due.append(min(view.shown_at for view in self.bars.values()) + BAR_PLAIN_INTERVAL)
        due = [when for when in due if when is not None]
        self.due = min(due) if due else None

    def tick(self, now=None):
        """Lines whose dedup window ended, bars whose plain line is due (the head's turns)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            for is_err, deduplicator in self.deduplicators.items():
                if deduplicator.recent:
                    self._print(is_err, deduplicator.expire(now))
            region = _real(sys.stderr)
            if self.bars and not _isatty(region):
                for view in list(self.bars.values()):
                    if now - view.shown_at >= BAR_PLAIN_INTERVAL:
                        self._show_plain(view, now, region)
            self._schedule(now)

    def finish(self):
        """The end of the job: lines still counted, bars still open (their last state)."""
        with self.lock:
            for is_err, deduplicator in self.deduplicators.items():
                self._print(is_err, deduplicator.flush())
            region = _real(sys.stderr)
            bars, self.bars = list(self.bars.values()), {}
            self._hide(region)
            self.status = None
            if bars:
                self.write(region, "".join(self._bar_line(view, False) + "\n"
                                           for view in bars))
            self._unpatch_print()
            self.due = None


def _fit(line, width):
    return line if len(line) <= width else line[:width - 1] + "~"


display = Display()                            # this process's terminal (the driver's)


def safe_print(*args, **kwargs):
    """``print`` that keeps the bars drawn on a terminal intact (Ray's ``safe_print``)."""
    target = kwargs.get("file")
    original = display.print_before or builtins.print
    if original is safe_print:
        original = print
    if target not in (None, sys.stdout, sys.stderr):
        return original(*args, **kwargs)
    with display.lock:
        region = _real(sys.stderr)
        hidden = display._hide(region)
        try:
            return original(*args, **kwargs)
        finally:
            if hidden:
                display._draw(region)


class WaitProgress:
    """The progress line of one long ``get``/``wait`` on the driver:
    ``hpcray: get: 37/100 objects ready, 12 s``. Made only once the wait has lasted
    ``WAIT_AFTER`` seconds (``Waiting`` keeps the time in its loop)."""
    __slots__ = ("what", "total", "started", "shown")

    def __init__(self, what, total, started):
        self.what = what
        self.total = total
        self.started = started
        self.shown = False

    def show(self, ready, now):
        """Show the count; return when to show it again."""
        self.shown = True
        display.wait_status(self._text(ready, now))
        tty = _isatty(_real(sys.stderr))
        return now + (WAIT_TTY_INTERVAL if tty else WAIT_PLAIN_INTERVAL)

    def end(self, ready, now):
        """The wait is over: the terminal's line goes; a plain one says how it ended."""
        if not self.shown:
            return
        display.wait_status(self._text(ready, now) + " (done)", final=True)

    def _text(self, ready, now):
        return (f"hpcray: {self.what}: {ready}/{self.total} objects ready, "
                f"{int(now - self.started)} s")


# ---------------------------------------------------------------------- the rank's role
_forwarder = None                              # the running Output's forward, if any


def forward_now():
    """A task's results are about to leave this rank: what it printed goes first, its last
    line without a newline too when it ran on this thread (lock held)."""
    if buffer.held:
        end_lines()
    if _forwarder is not None:
        _forwarder(force=True)


class Output:
    """A rank's role for output: passes its records on (to the head, and into the rank's
    log file when the job has a directory); on the head, shows them (``on_output``).
    Collaborators: ``job`` (JobView: the rank, hosts, ``job_dir``), ``transport``,
    ``config`` (``dedup_logs``)."""

    def __init__(self, job, transport, config):
        global _forwarder
        self.job = job
        self.rank = job.rank
        self.transport = transport
        self.log_to_driver = True              # init(log_to_driver=False): not shown
        self.log = None                        # the rank's log file (False: none can be)
        self.logged_bars = {}                  # bar uuid -> when its state was last logged
        if self.rank == 0:
            display.configure(config.dedup_logs)
        _forwarder = self.forward

    def forward(self, force=False):
        """Pass the records waiting on (a turn hook, lock held): after ``FORWARD_DELAY``,
        or at once with ``force``. On the head, also what the display has due."""
        if buffer.pending and (force or time.monotonic() - buffer.since >= FORWARD_DELAY):
            records = buffer.take()
            if records:
                self._log(records)
                if self.rank == 0:
                    self.show(0, records)      # (before the results: in order)
                else:
                    self.transport.send(0, messages.output(self.rank, records))
        if self.rank == 0 and display.due is not None and time.monotonic() >= display.due:
            display.tick()
        return 0

    def on_output(self, rank, records):
        """OUTPUT: what ``rank``'s tasks and actors printed: to the driver's terminal."""
        self.show(rank, records)

    def show(self, rank, records):
        """Print ``rank``'s records on the driver's terminal (unless ``log_to_driver`` is
        off)."""
        if not self.log_to_driver:
            return
        node = self.job.host_of[rank]
        for record in records:
            if record[0] == LINES:
                _, pid, name, is_err, lines = record
                display.lines((name, pid, rank, node), is_err, lines)
            else:
                _, pid, name, state = record
                display.bar((name, pid, rank, node), state)

    def set_log_to_driver(self, enabled):
        """``init(log_to_driver=)``: show what tasks print on the driver, or not (it still
        goes to the ranks' log files)."""
        self.log_to_driver = bool(enabled)

    # ------------------------------------------------------------------ the rank's log
    def _log(self, records):
        log = self.log
        if log is None:
            log = self.open_log()
        if not log:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        now = time.monotonic()
        rank, node = self.rank, self.job.host
        text = []
        for record in records:
            if record[0] == LINES:
                _, pid, name, is_err, lines = record
                stream = "stderr" if is_err else "stdout"
                tag = f"{stamp} {stream} {prefix(name, pid, rank, node)}"
                text.extend(f"{tag} {line}\n" for line in lines)
            else:
                _, pid, name, state = record
                uuid = state.get("uuid")
                closed = state.get("closed")
                if not closed and now - self.logged_bars.get(uuid, -BAR_PLAIN_INTERVAL) \
                        < BAR_PLAIN_INTERVAL:
                    continue
                if closed:
                    self.logged_bars.pop(uuid, None)
                else:
                    self.logged_bars[uuid] = now
                text.append(f"{stamp} bar {prefix(name, pid, rank, node)} "
                            f"{bar_text(state)}\n")
        try:
            log.write("".join(text))
            log.flush()
        except (OSError, ValueError):
            self.log = False

    def open_log(self):
        """Open this rank's log in the job directory (None: there is none)."""
        job_dir = self.job.job_dir
        if not job_dir:
            self.log = False                   # (no job directory: no log)
            return None
        try:
            self.log = layout.open_private(layout.rank_log_path(job_dir, self.rank), "a")
        except OSError as error:
            self.log = False
            _real(sys.stderr).write(f"hpcray: rank {self.rank}: cannot write its log in "
                                    f"{job_dir}: {error}\n")
        return self.log

    # ------------------------------------------------------------------ the end
    def before_leaving(self):
        """A worker rank leaves the job: what waits goes now (lock held)."""
        self.forward(force=True)

    def close(self):
        """The rank's end: the head shows what is left (lines still counted, open bars);
        the log file is closed."""
        if self.rank == 0:
            records = buffer.take()
            if records:
                self._log(records)
                self.show(0, records)
            display.finish()
        if self.log:
            try:
                self.log.close()
            except OSError:
                pass
        self.log = None
