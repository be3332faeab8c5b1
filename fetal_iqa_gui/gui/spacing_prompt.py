"""Asking the user for the pixel spacing when the file states none (a PNG, an uncalibrated DICOM),
or states one the user knows is wrong: read off the ultrasound machine's depth scale.

The field starts empty (a value nobody typed is never "entered by the user"), reads a decimal
comma as the point (0,28 is 0.28, never 2), and OK waits for a number in the plausible range."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from ..case.spacing import Spacing, entered_by_user
from ..review.calipers import PLAUSIBLE_SPACING_MM


def read_spacing(text: str) -> float | None:
    """mm per pixel from what was typed ('0.28', '0,28'), or None unless a plausible number."""
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    low, high = PLAUSIBLE_SPACING_MM
    return value if math.isfinite(value) and low <= value <= high else None


class SpacingDialog(QDialog):
    def __init__(self, parent: QWidget, current: Spacing):
        super().__init__(parent)
        self.setWindowTitle("Pixel spacing")
        low, high = PLAUSIBLE_SPACING_MM
        intro = QLabel(f"Now: {current.describe()}.\n\nmm per pixel, from the ultrasound machine's depth scale "
                       f"(for example 10 mm between ticks 40 pixels apart: 0.25), from {low} to {high}:")
        intro.setWordWrap(True)
        self.field = QLineEdit()
        self.field.setAccessibleName("Pixel spacing in mm per pixel")
        self.field.setPlaceholderText("for example 0.25")
        self.problem = QLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.field.textChanged.connect(self._check)
        layout = QVBoxLayout(self)
        for widget in (intro, self.field, self.problem, self.buttons):
            layout.addWidget(widget)
        self.resize(460, 0)
        self._check("")

    def _check(self, text: str) -> None:
        ok = read_spacing(text) is not None
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
        low, high = PLAUSIBLE_SPACING_MM
        self.problem.setText("" if ok or not text.strip() else f"Type a number from {low} to {high} mm per pixel.")

    def value(self) -> float | None:
        return read_spacing(self.field.text())


def ask_spacing(parent: QWidget, current: Spacing) -> Spacing | None:
    """The spacing the user enters (square pixels, mm per pixel), or None if cancelled."""
    dialog = SpacingDialog(parent, current)
    accepted = dialog.exec() == QDialog.DialogCode.Accepted
    value = dialog.value()
    dialog.deleteLater()
    return entered_by_user((value, value)) if accepted and value is not None else None
