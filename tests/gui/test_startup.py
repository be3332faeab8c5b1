"""The window shows before the model's libraries load: they take seconds to import, and the scoring
thread imports them when it first runs (benchmarks/bench_startup.py times the difference)."""

import subprocess
import sys

HEAVY = ("torch", "open_clip", "peft")


def test_the_window_imports_no_model_library():
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\n"
            "from fetal_iqa_gui.gui.main_window import MainWindow\nimport fetal_iqa_gui.gui.app\n"
            "app = QApplication([]); window = MainWindow(); window.show(); app.processEvents()\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "", f"imported before the window showed: {result.stdout.strip()}"
