"""Asking the user for the pixel spacing when the file states none (a PNG, an uncalibrated DICOM),
or states one the user knows is wrong: read off the ultrasound machine's depth scale."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QWidget

from ..case.spacing import Spacing, entered_by_user
from ..review.calipers import PLAUSIBLE_SPACING_MM


def ask_spacing(parent: QWidget, current: Spacing) -> Spacing | None:
    """The spacing the user enters (square pixels, mm per pixel), or None if cancelled."""
    low, high = PLAUSIBLE_SPACING_MM
    now = f"Now: {current.describe()}."
    value, ok = QInputDialog.getDouble(
        parent, "Pixel spacing",
        f"{now}\n\nmm per pixel, from the ultrasound machine's depth scale\n"
        f"(for example 10 mm between ticks 40 pixels apart: 0.25):",
        current.mm[0] if current.known else 0.25, low, high, 4)
    return entered_by_user((value, value)) if ok else None
