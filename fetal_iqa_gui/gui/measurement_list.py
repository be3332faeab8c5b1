"""The measurements kept on the current frame, each with its label and value, as on an ultrasound
machine's results box: select one to see it highlighted on the image, then edit or delete it."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..review.calipers import labels_of
from .state import ViewerState

VISIBLE_ROWS = 5  # the list's height: a frame rarely holds more measurements than this
EMPTY_HINT = "None on this frame. C: ellipse (AC), D: distance; drag on the image; A keeps it."


def row_text(label: str, caliper) -> str:
    by_model = " · the model's" if getattr(caliper, "by", "user") == "model" else ""
    return f"{label}: {caliper.value_text()}{by_model}"


class MeasurementList(QWidget):
    edit_requested = Signal()  # Edit, Enter or a double-click on a row
    delete_requested = Signal()

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.title = QLabel()
        self.rows = QListWidget()
        self.rows.setAccessibleName("Measurements")
        self.rows.setToolTip("The frame's measurements: select one to edit (E, Enter, double-click) or delete (Delete)")
        self.rows.setWordWrap(True)
        self.rows.setMaximumHeight(round(self.rows.fontMetrics().height() * VISIBLE_ROWS * 1.4))
        self.rows.currentRowChanged.connect(lambda row: state.select_measurement(row if row >= 0 else None))
        self.rows.itemActivated.connect(lambda _item: self.edit_requested.emit())
        self.hint = QLabel(EMPTY_HINT)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("QLabel { color: #9a9a9a; }")
        self.edit_button = QPushButton("Edit")
        self.edit_button.setToolTip("Unlock the selected measurement to adjust it (E); A keeps the change")
        self.edit_button.clicked.connect(self.edit_requested)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected measurement (Delete); Ctrl+Z brings it back")
        self.delete_button.clicked.connect(self.delete_requested)

        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # the best frames take the room
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.rows)
        layout.addWidget(self.hint)
        buttons = QHBoxLayout()
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.delete_button)
        layout.addLayout(buttons)
        state.case_changed.connect(self.refresh)
        state.frame_changed.connect(lambda _: self.refresh())
        state.calipers_changed.connect(self._on_calipers_changed)
        state.measurement_selected.connect(self._show_selected)
        self.refresh()

    def _on_calipers_changed(self, frame: int) -> None:
        if frame == self.state.frame:
            self.refresh()

    def refresh(self) -> None:
        calipers = self.state.calipers
        self.title.setText(f"<b>Measurements</b> on frame {self.state.frame}" if self.state.case
                           else "<b>Measurements</b>")
        self.rows.blockSignals(True)  # showing the state is not the user's choice
        self.rows.clear()
        self.rows.addItems([row_text(label, c) for label, c in zip(labels_of(calipers), calipers)])
        self.rows.blockSignals(False)
        self.rows.setVisible(bool(calipers))
        self.hint.setVisible(not calipers)
        self._show_selected(self.state.selected)

    def _show_selected(self, index: int | None) -> None:
        self.rows.blockSignals(True)
        if index is None:
            self.rows.clearSelection()
        self.rows.setCurrentRow(-1 if index is None else index)
        self.rows.blockSignals(False)
        for button in (self.edit_button, self.delete_button):
            button.setEnabled(index is not None)

