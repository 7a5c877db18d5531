"""The protocol table (hpcray/wire/messages.py) is the single source of every message kind:
each kind has one constructor taking exactly its fields and exactly one handler whose
parameters are those fields, every send site in the package builds its message with a
constructor (with the right number of fields), and the dispatcher filters sessions once,
keeps handling a batch after a handler raised, and breaks the runtime loudly."""
import ast
import inspect
import threading
from pathlib import Path

import pytest

from hpcray.actors.client import ActorClient
from hpcray.actors.host import ActorHost
from hpcray.core.access import ObjectAccess
from hpcray.core.execution import Execution
from hpcray.core.lifecycle import Lifecycle
from hpcray.core.liveness import Liveness
from hpcray.core.ownership import Ownership
from hpcray.core.output import Output
from hpcray.core.progress import Progress
from hpcray.core.refcount import RefTracker
from hpcray.core.requests import HeadRequests
from hpcray.core.submission import Submitter
from hpcray.exceptions import RuntimeBrokenError
from hpcray.head.directory import ActorDirectory
from hpcray.head.groups import GroupRegistry
from hpcray.head.observer import Observer
from hpcray.head.service import HeadService
from hpcray.store.copies import NodeCopies
from hpcray.wire import messages

# The role named in a handler ("role.method") -> the class registered under that name.
ROLES = {
    "execution": Execution, "ownership": Ownership, "access": ObjectAccess, "refs": RefTracker,
    "lifecycle": Lifecycle, "progress": Progress, "requests": HeadRequests,
    "liveness": Liveness, "submitter": Submitter,
    "copies": NodeCopies, "client": ActorClient, "host": ActorHost, "head": HeadService,
    "directory": ActorDirectory, "groups": GroupRegistry, "observer": Observer,
    "output": Output,
}
PACKAGE = Path(__file__).resolve().parents[1] / "hpcray"


def test_codes_and_names_are_unique_and_match_the_constants():
    codes = [kind.code for kind in messages.TABLE]
    names = [kind.name for kind in messages.TABLE]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    for kind in messages.TABLE:
        assert getattr(messages, kind.name) == kind.code, kind.name


_DUMMY = {"results": [], "obj": messages.from_wire((0, b"")), "error": None}


def test_each_kind_has_one_constructor_taking_exactly_its_fields():
    assert set(messages.CONSTRUCTORS) == {kind.code for kind in messages.TABLE}
    assert len(set(messages.CONSTRUCTORS.values())) == len(messages.CONSTRUCTORS)
    for kind in messages.TABLE:
        constructor = messages.CONSTRUCTORS[kind.code]
        parameters = tuple(inspect.signature(constructor).parameters)
        assert parameters == kind.fields, (kind.name, parameters, kind.fields)
        message = constructor(*[_DUMMY.get(field) for field in kind.fields])
        assert message[0] == kind.code and len(message) == 1 + len(kind.fields), kind.name


def test_each_kind_has_exactly_one_handler_taking_its_fields():
    handled = {}
    for kind in messages.TABLE:
        role, _, method = kind.handler.partition(".")
        assert role in ROLES, f"{kind.name}: unknown role {role!r}"
        handler = getattr(ROLES[role], method, None)
        assert callable(handler), f"{kind.name}: {ROLES[role].__name__} has no {method}"
        parameters = tuple(inspect.signature(handler).parameters)[1:]   # without self
        assert parameters == kind.fields, (kind.name, parameters, kind.fields)
        handled.setdefault(kind.handler, []).append(kind.name)
    shared = {handler: names for handler, names in handled.items() if len(names) > 1}
    assert not shared, f"one handler for several kinds: {shared}"


def _send_sites():
    """Every call of a messages constructor in the package: (file, line, name, arguments)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "messages.py" and path.parent.name == "wire":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "messages":
                yield path, node


def test_every_send_site_calls_a_constructor_with_its_kinds_fields():
    by_name = {constructor.__name__: (code, constructor)
               for code, constructor in messages.CONSTRUCTORS.items()}
    seen, wrong = set(), []
    helpers = {"error_from_wire"}
    for path, node in _send_sites():
        name = node.func.attr
        if name in helpers:
            continue
        if name not in by_name:
            if name.isupper():                  # a constant, e.g. messages.TAG
                continue
            wrong.append(f"{path.name}:{node.lineno}: messages.{name} is no constructor")
            continue
        code, constructor = by_name[name]
        fields = messages.BY_CODE[code].fields
        given = len(node.args) + len(node.keywords)
        if any(isinstance(a, ast.Starred) for a in node.args) and name != "reply":
            wrong.append(f"{path.name}:{node.lineno}: messages.{name}(*...): name the fields")
        elif given != len(fields) and not any(isinstance(a, ast.Starred) for a in node.args):
            wrong.append(f"{path.name}:{node.lineno}: messages.{name} takes {fields}, "
                         f"got {given} argument(s)")
        seen.add(code)
    assert not wrong, "\n".join(wrong)
    unsent = {messages.BY_CODE[code].name for code in messages.CONSTRUCTORS} - \
        {messages.BY_CODE[code].name for code in seen}
    # request kinds are sent as ``requests.ask(messages.<constructor>, ...)``
    asked = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "ask" and node.args \
                    and isinstance(node.args[0], ast.Attribute):
                constructor = messages.CONSTRUCTORS[by_name[node.args[0].attr][0]]
                kind = messages.BY_CODE[by_name[node.args[0].attr][0]]
                asked.add(kind.name)
                # the token is added by ask: the call gives the other fields
                assert len(node.args) - 1 == len(kind.fields) - 1, \
                    f"{path.name}:{node.lineno}: {kind.name} takes {kind.fields}"
                assert constructor is not None
    assert unsent - asked == set(), f"kinds nobody sends: {unsent - asked}"


def test_no_message_tuple_is_built_by_hand():
    """Outside wire/messages.py, no tuple starts with a message kind constant."""
    wrong = []
    kinds = {kind.name for kind in messages.TABLE}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "messages.py" and path.parent.name == "wire":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Tuple) and node.elts:
                first = node.elts[0]
                if isinstance(first, ast.Attribute) and first.attr in kinds:
                    wrong.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:60]}")
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------------- the dispatcher
class _Job:
    rank, size, host, node_index = 1, 3, "testhost", 0


class _Transport:
    def __init__(self):
        self.sent = []
        self.session = 0

    def send(self, dest, message):
        self.sent.append((dest, message))

    def set_session(self, session):
        self.session = session

    def flush(self):
        pass

    def poll(self, deliver):
        return 0


class _Refs:
    events = ()


class _Copies:
    def busy(self):
        return False


class _Role:
    """A fake role handling RESULT (scoped) and FREE (unscoped)."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def on_result(self, task_id, results, seconds, executor, contained):
        if task_id == self.fail_on:
            raise KeyError("injected fault")
        self.calls.append(("result", task_id))

    def on_free(self, slot):
        self.calls.append(("free", slot))

    def on_item(self, task_id, index, obj, executor, contained):
        self.calls.append(("item", task_id))

    def on_free_object(self, object_id):
        self.calls.append(("free_object", object_id))


def _progress(role, session=0):
    progress = Progress(threading.RLock(), _Job(), _Transport(), config=None, refs=_Refs(),
                        store=None, copies=_Copies())
    progress.register("ownership", role)
    progress.session = session
    return progress


def _result(task_id):
    return messages.result(task_id, [], None, 0, None)


def test_older_sessions_are_dropped_newer_ones_kept_until_reset():
    role = _Role()
    progress = _progress(role, session=1)
    progress.deliver(0, [_result(1), messages.free(7)])     # older: RESULT dropped, FREE not
    progress.deliver(1, _result(2))
    progress.deliver(2, _result(3))                          # newer: kept
    assert role.calls == [("free", 7), ("result", 2)]
    progress.set_session(2)
    assert role.calls[-1] == ("result", 3)
    assert progress.transport.session == 2


def test_a_handler_that_raises_breaks_the_runtime_but_not_the_batch(capfd):
    role = _Role(fail_on=2)
    progress = _progress(role)
    progress.deliver(0, [_result(1), _result(2), _result(3), messages.free(4)])
    assert role.calls == [("result", 1), ("result", 3), ("free", 4)]
    assert progress.broken and "rank 1" in progress.broken and "testhost" in progress.broken
    assert "KeyError" in progress.broken and "RESULT" in progress.broken
    # every other rank learns it
    told = sorted(dest for dest, message in progress.transport.sent
                  if message[0] == messages.BROKEN)
    assert told == [0, 2]
    with pytest.raises(RuntimeBrokenError, match="injected fault"):
        progress.check()
    assert "internal fault on rank 1" in capfd.readouterr().err


def test_broken_elsewhere_breaks_here_and_wakes_listeners():
    progress = _progress(_Role())
    woken = []
    progress.broken_listeners.append(woken.append)
    progress.deliver(0, messages.broken(2, "otherhost", "handling X raised Y"))
    assert woken and "rank 2 (host otherhost)" in woken[0]
    with pytest.raises(RuntimeBrokenError, match="otherhost"):
        progress.check()
    progress.deliver(0, messages.broken(0, "h", "second"))   # the first cause stays
    assert "otherhost" in progress.broken and len(woken) == 1
