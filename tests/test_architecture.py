"""The house and its rooms: every module imports alone, no module imports a higher floor (or
its neighbour on the same floor), no import cycles, no reaching into another module's
private members, every knob read through config.py, every package says what it owns.

The floors, lowest first (docs/architecture.md states the same order in one line):

    exceptions, config < wire < store < core < actors | head < workers < launch < public API
    < util
"""
import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hpcray"

# Each module's floor: the first prefix that matches. Modules on one floor may import each
# other only inside the same package (actors and head are neighbours: neither imports the other).
FLOORS = [
    ("hpcray.exceptions", 0), ("hpcray.config", 0),
    ("hpcray.wire", 1), ("hpcray.jobdir", 1),
    ("hpcray.store", 2),
    ("hpcray.core", 3),
    ("hpcray.actors", 4), ("hpcray.head", 4),
    ("hpcray.workers", 5),
    ("hpcray.launch", 6),
    ("hpcray.api", 7), ("hpcray.remote_function", 7), ("hpcray.actor", 7),
    ("hpcray.context", 7), ("hpcray.reduction", 7), ("hpcray.scheduling", 7),
    ("hpcray.dag", 7),
    ("hpcray.cloudpickle", 7),
    ("hpcray.util", 8), ("hpcray.experimental", 8), ("hpcray._private", 8),
    ("hpcray.__main__", 9), ("hpcray", 9),
]
PUBLIC = {"hpcray.api", "hpcray.remote_function", "hpcray.actor", "hpcray.context",
          "hpcray.reduction", "hpcray.exceptions", "hpcray.scheduling",
          "hpcray.dag"}


def _modules():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def floor_of(module):
    for prefix, floor in FLOORS:
        if module == prefix or module.startswith(prefix + "."):
            return floor
    raise AssertionError(f"{module} is on no floor: add it to FLOORS and to the docs")


def room_of(module):
    """The package a module lives in (the public layer counts as one room)."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py"):
        return ".".join(parts[:2])
    return "hpcray"


def _imports(module, module_level_only=False):
    """The hpcray modules ``module`` imports (whole-module names, resolved)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # "from package import module" depends on the module; "from module import name"
            # on the module
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in MODULES else stem
                       for alias in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module and target.startswith("hpcray"):
                found.add(target)
    return found


def test_every_module_is_on_a_floor_and_imports_first_in_a_fresh_interpreter():
    """Each module imported first in a fresh interpreter (an import cycle would raise a
    circular ImportError for one of them; hpcray.core.object_ref, hpcray.actors.host and
    hpcray.reduction once did)."""
    for module in MODULES:
        floor_of(module)
    env = dict(os.environ, PYTHONPATH=str(PACKAGE.parent))

    def load(module):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                              text=True, env=env, timeout=120)
        return module, done.returncode, done.stderr[-2000:]
    with ThreadPoolExecutor(4) as pool:
        failures = [(m, err) for m, rc, err in pool.map(load, sorted(MODULES)) if rc != 0]
    assert not failures, "\n\n".join(f"import {m} failed:\n{err}" for m, err in failures)


def test_no_module_imports_a_higher_floor_or_a_neighbour():
    wrong = []
    for module in MODULES:
        floor, room = floor_of(module), room_of(module)
        for target in _imports(module):
            if target == "hpcray" and module in ("hpcray.__main__",):
                continue
            target_floor = floor_of(target)
            if target_floor > floor or (target_floor == floor and room_of(target) != room
                                        and not (room == "hpcray" and target in PUBLIC)
                                        and floor != 0):
                wrong.append(f"{module} (floor {floor}) imports {target} (floor {target_floor})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = {module: _imports(module, module_level_only=True) for module in MODULES}
    for module, targets in edges.items():      # a package's modules import it: not a cycle
        edges[module] = {t for t in targets if not module.startswith(t + ".")}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))
    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert not cycles, cycles


def _defined_private_names(tree):
    """Private names a module defines: attributes it sets, functions, classes, slots."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)              # __slots__ entries
    return names


STDLIB_PRIVATE = {"_exit", "_getframe", "_current_frames"}


def test_no_module_reaches_into_another_modules_private_members():
    wrong = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        own = _defined_private_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                base = node.value
                if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                    continue
                if node.attr in own or node.attr in STDLIB_PRIVATE:
                    continue
                wrong.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        wrong.append(f"{path.name}:{node.lineno}: imports private "
                                     f"{alias.name} from {node.module}")
    assert not wrong, "\n".join(wrong)


def test_every_knob_is_read_through_config():
    """No ``os.environ[...]``/``.get``/``getenv`` of an ``HPCRAY_*`` name outside config.py."""
    wrong = []
    for module, path in MODULES.items():
        if module == "hpcray.config":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            key = None
            if isinstance(node, ast.Subscript):
                key = node.slice
            elif isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("get", "getenv", "pop", "setdefault"):
                key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                    and key.value.startswith("HPCRAY_"):
                wrong.append(f"{path.name}:{node.lineno}: reads {key.value}")
    assert not wrong, "\n".join(wrong)


def test_every_package_says_what_it_owns_and_may_import():
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module == "hpcray":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert "floor" in doc and "import" in doc, f"{module}: its docstring must say its " \
                                                   f"floor and what it may import"


def test_the_architecture_doc_names_only_modules_that_exist():
    import re
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = []
    for name in set(re.findall(r"\b((?:[a-z_]+/)?[a-z_]+\.py)\b", doc)):
        if name in ("script.py",):             # the user's script in examples
            continue
        if "/" in name:
            if not (PACKAGE / name).exists() and not (PACKAGE.parent / name).exists():
                missing.append(name)
        elif not any(path.name == name for path in PACKAGE.rglob(name)) \
                and not (PACKAGE.parent / name).exists() \
                and not list((PACKAGE.parent / "tests").rglob(name)):
            missing.append(name)
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    for room in ("wire", "store", "core", "actors", "head", "launch", "util"):
        assert f"{room}/" in doc, f"the rooms picture misses {room}/"
