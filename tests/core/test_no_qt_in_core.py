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
    assert "fetal_iqa_gui.scoring" in CORE_MODULES and "fetal_iqa_gui.cli" in CORE_MODULES


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


def test_imports_never_run_back_up_a_floor():
    """files and models -> scored sweep -> CLI / GUI: the core imports neither front door."""
    def floor(name):
        return 2 if name.startswith(("fetal_iqa_gui.gui", "fetal_iqa_gui.cli", "fetal_iqa_gui.__main__")) else 1
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                    if floor(b) > floor(a) or (a.startswith("fetal_iqa_gui.cli") and b.startswith("fetal_iqa_gui.gui")
                                               and a != "fetal_iqa_gui.cli"))
    assert not upward, upward
