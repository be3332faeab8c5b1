"""A field for a whole number (grey levels, batch size, threads): no group separator ("1,5" is not
15) and a refused keystroke said beside the field, not dropped silently."""

from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QSpinBox

from .decimal_box import plain_locale, say_refused


class WholeNumberBox(QSpinBox):
    def __init__(self, parent=None, **options):
        super().__init__(parent, **options)
        self.setLocale(plain_locale())

    def validate(self, text: str, position: int):
        typed = text.removeprefix(self.prefix()).removesuffix(self.suffix())
        # QSpinBox drops group separators from fields that reach 1000, even when the locale rejects them
        result = (QValidator.State.Invalid, text, position) if any(mark in typed for mark in ",.") \
            else super().validate(text, position)
        if result[0] == QValidator.State.Invalid:
            say_refused(self, typed, f"a whole number from {self.minimum()} to {self.maximum()}")
        return result
