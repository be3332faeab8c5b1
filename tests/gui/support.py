"""Helpers the window's tests share: open, score and export, and wait as a user would."""

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox


def open_and_score(qtbot, window, path, timeout=60_000):
    with qtbot.waitSignal(window.state.case_changed, timeout=timeout):
        window.open_path(path)
    wait_for_scoring(qtbot, window, timeout)


def wait_for_scoring(qtbot, window, timeout=60_000):
    """Until the scoring thread has finished and the window has handled its last signals (its
    `finished` included: is_scoring turns false there)."""
    qtbot.waitUntil(lambda: window.session.scorer is not None and window.session.scorer.isFinished()
                    and not window.session.is_scoring and window.progress.isHidden(), timeout=timeout)


def export_and_wait(qtbot, window, frames, folder):
    """Export through the window's exporter (a worker thread) and return its report."""
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as done:
        window.exporter.export(frames, folder)
    return done.args[0]


def type_into(qtbot, box, text):
    """Select the field's text, type `text` over it and press Enter, as a user would."""
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


def dismiss_alert(qtbot, window):
    """Press Enter on the alert the window shows (until then it holds the window's keys); the window
    is active again, as a window manager makes it."""
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QMessageBox))
    QTest.keyClick(QApplication.activeModalWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
