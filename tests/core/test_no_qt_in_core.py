"""The layers: the core never imports Qt (the CLI and batch work run where no display exists), and
no module imports another that imports it back, directly or through others."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fetal_iqa_gui

PACKAGE = Path(fetal_iqa_gui.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
CORE_MODULES = sorted(name for name in MODULES  # __main__ modules run when imported: their imports are checked below
                      if not name.startswith("fetal_iqa_gui.gui") and not name.endswith("__main__"))


@pytest.mark.slow
def test_core_modules_do_not_import_qt():
    code = ("import sys, importlib\n"
            f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]\n"
            "print(','.join(bad))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"the core imported Qt: {result.stdout}"
    assert "fetal_iqa_gui.engine.scoring" in CORE_MODULES and "fetal_iqa_gui.cli" in CORE_MODULES


def imports_of(name: str) -> set[str]:
    """Our modules that `name` imports anywhere in its file (function-level imports count too)."""
    found = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in MODULES and c != name)
    return found - {"fetal_iqa_gui"}  # the package itself holds only the version


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_circles():
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in GRAPH[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    circles = sorted(name for name in MODULES if name in reach(name))
    assert not circles, f"modules that import themselves through others: {circles}"


# The rooms, bottom up: a module imports from its own room and from lower floors only.
FLOORS = {"base": 0, "case": 1, "model": 1, "engine": 2, "review": 3, "runs": 4, "training": 4, "pacs": 4,
          "live": 4, "cli": 5, "gui": 5, "entry": 6, "__main__": 7}


def room(name: str) -> str:
    return name.split(".")[1]


def test_every_module_lives_in_a_room():
    homeless = sorted(name for name in MODULES if name != "fetal_iqa_gui" and room(name) not in FLOORS)
    assert not homeless, f"modules outside the rooms (add them to a room, or the room to FLOORS): {homeless}"


def test_imports_never_run_back_up_a_floor():
    """base -> case, model -> engine -> review -> runs, training, pacs -> cli, gui: the data's way through
    the code. The core imports neither front door; the CLI reaches the window only to start it."""
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() if a != "fetal_iqa_gui" for b in targets
                    if room(a) != room(b) and FLOORS[room(b)] >= FLOORS[room(a)]
                    and not (a == "fetal_iqa_gui.cli" and room(b) == "gui"))
    assert not upward, upward


def test_no_module_grows_past_400_lines():
    """A longer file holds more than one idea: split it along them."""
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, long
