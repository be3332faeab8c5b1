"""A field for a decimal such as a threshold: it takes only what it can read, reads a decimal comma
as the point (0,3 is 0.3, never 0), and says so beside the field when it refuses a keystroke."""

from __future__ import annotations

from PySide6.QtCore import QLocale, QPoint
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QToolTip


def plain_locale() -> QLocale:
    """Numbers as the timeline, the CSV and the sidecars write them (0.5), with no group separator:
    in a field of fractions or grey levels a comma never groups thousands."""
    locale = QLocale.c()
    locale.setNumberOptions(QLocale.NumberOption.RejectGroupSeparator | QLocale.NumberOption.OmitGroupSeparator)
    return locale


def say_refused(box: QAbstractSpinBox, typed: str, wanted: str) -> None:
    """A refused keystroke, told under the field (a spin box would otherwise drop it silently)."""
    name = box.accessibleName() or "This field"
    QToolTip.showText(box.mapToGlobal(QPoint(0, box.height())), f"{name}: '{typed}' refused; type {wanted}.", box)


class DecimalBox(QDoubleSpinBox):
    def __init__(self, parent=None, **options):
        super().__init__(parent, **options)
        self.setLocale(plain_locale())

    def validate(self, text: str, position: int):
        text = text.replace(",", ".")  # a locale's decimal comma
        result = super().validate(text, position)
        if result[0] == QValidator.State.Invalid:
            typed = text.removeprefix(self.prefix()).removesuffix(self.suffix())
            say_refused(self, typed, f"a number from {self.minimum():g} to {self.maximum():g}, such as "
                                     f"{(self.minimum() + self.maximum()) / 2:g} (a comma works as the point)")
        return result

    def valueFromText(self, text: str) -> float:
        return super().valueFromText(text.replace(",", "."))
