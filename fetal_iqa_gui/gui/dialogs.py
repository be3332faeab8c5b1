"""The Help menu's dialogs: the keyboard shortcuts (from the action table) and About."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QMessageBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from .. import __version__
from .actions import SHORTCUTS


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


def about_box(parent: QWidget, model_name: str | None) -> QMessageBox:
    text = (f"<b>fetal-iqa {__version__}</b><br>Image-quality assessment of fetal ultrasound blind sweeps "
            "with FetalCLIP_CLS (He, Wang, Yaqub, 2025).<br><br>"
            f"Model: {model_name or 'none loaded yet'}<br><br><b>Not a medical device.</b>")
    box = QMessageBox(QMessageBox.Icon.Information, "About fetal-iqa", text, QMessageBox.StandardButton.Ok, parent)
    return box
