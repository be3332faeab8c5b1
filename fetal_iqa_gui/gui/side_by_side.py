"""A form row's widgets side by side: a field and its Browse… button, a button and what it answered."""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget


def side_by_side(*widgets: QWidget, stretch: QWidget | None = None) -> QWidget:
    """One widget holding `widgets` in a row, without margins (the form's own); `stretch` takes the room left."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if widget is stretch else 0)
    return row


def button(text: str, tip: str, clicked: Callable[[], None]) -> QPushButton:
    made = QPushButton(text)
    made.setToolTip(tip)
    made.clicked.connect(clicked)
    return made
