"""Help > About shows `fetal-iqa doctor`'s report, and its Copy button puts it on the clipboard."""

import subprocess
import sys

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox, QPlainTextEdit

from fetal_iqa_gui.gui import dialogs


def test_about_shows_the_installation_report_and_copies_it(qtbot):
    dialog = dialogs.about_box(None, "Test model")
    qtbot.addWidget(dialog)
    text = dialog.findChild(QPlainTextEdit).toPlainText()
    assert "torch:" in text and "Auto engine:" in text and "Settings:" in text and "fetal-iqa.conf" in text
    copy = next(b for b in dialog.findChild(QDialogButtonBox).buttons() if b.text() == "Copy")
    QGuiApplication.clipboard().clear()
    copy.click()
    assert QGuiApplication.clipboard().text() == text


def test_doctor_command_prints_the_same_report():
    result = subprocess.run([sys.executable, "-m", "fetal_iqa_gui", "doctor"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    labels = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert {"torch", "CUDA GPU", "Qt", "CPU features", "Auto engine", "Settings", "Log"} <= set(labels)
    assert "cannot be loaded" not in result.stdout
