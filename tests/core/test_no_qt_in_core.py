"""The core never imports Qt: the CLI and batch work must run where no display or Qt exists."""

import subprocess
import sys
from pathlib import Path

import pytest

import fetal_iqa_gui

CORE_MODULES = sorted(
    "fetal_iqa_gui." + ".".join(p.relative_to(Path(fetal_iqa_gui.__file__).parent).with_suffix("").parts)
    for p in Path(fetal_iqa_gui.__file__).parent.rglob("*.py")
    if "gui" not in p.relative_to(Path(fetal_iqa_gui.__file__).parent).parts[:1] and p.name != "__init__.py"
)


@pytest.mark.slow
def test_core_modules_do_not_import_qt():
    code = ("import sys, importlib\n"
            f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]\n"
            "print(','.join(bad))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"the core imported Qt: {result.stdout}"
    assert "fetal_iqa_gui.scoring" in CORE_MODULES and "fetal_iqa_gui.cli" in CORE_MODULES
