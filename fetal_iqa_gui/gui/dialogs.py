"""The Help menu's dialogs: the keyboard shortcuts (from the action table) and About."""

from __future__ import annotations

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from .. import __version__
from ..engine.doctor import report
from .actions import SHORTCUTS
from .settings import settings_file


def shortcuts_dialog(parent: QWidget) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle("Keyboard shortcuts")
    table = QTableWidget(len(SHORTCUTS), 2, dialog)
    table.setHorizontalHeaderLabels(["Key", "Action"])
    for row, action in enumerate(SHORTCUTS):
        table.setItem(row, 0, QTableWidgetItem(", ".join(action.keys)))
        table.setItem(row, 1, QTableWidgetItem(action.description))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    dialog.resize(460, 560)
    return dialog


def about_box(parent: QWidget, model_name: str | None) -> QDialog:
    """What the app is, and `fetal-iqa doctor`'s report with a button that copies it."""
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)  # the report imports torch: seconds, the first time
    try:
        text = report(qVersion(), settings_file())
    finally:
        QApplication.restoreOverrideCursor()
    dialog = QDialog(parent)
    dialog.setWindowTitle("About fetal-iqa")
    intro = QLabel(f"<b>fetal-iqa {__version__}</b><br>Image-quality assessment of fetal ultrasound blind sweeps "
                   "with FetalCLIP_CLS (He, Wang, Yaqub, 2025).<br><br>"
                   f"Model: {model_name or 'none loaded yet'}<br><br><b>Not a medical device.</b>")
    details = QPlainTextEdit(text, readOnly=True)
    details.setAccessibleName("Installation report")
    details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
    copy.setToolTip("Copy the report, to paste it into a bug report")
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(text))
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(intro)
    layout.addWidget(details)
    layout.addWidget(buttons)
    dialog.resize(760, 520)
    return dialog
