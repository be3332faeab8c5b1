"""The best frames: the top frames of each sweep (one per run of good frames), click to jump."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from .state import ViewerState


class BestFramesWidget(QListWidget):
    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.setAccessibleName("Best frames")
        self.setToolTip("Top frames of each sweep, one per run of good frames. Click to jump.")
        self.setMinimumWidth(220)
        self.itemClicked.connect(lambda item: state.set_frame(item.data(Qt.ItemDataRole.UserRole)))
        state.scores_changed.connect(self.refresh)
        state.threshold_changed.connect(lambda _: self.refresh())

    def refresh(self) -> None:
        self.clear()
        for pick in self.state.best_frames():
            good = pick.score >= self.state.threshold
            item = QListWidgetItem(f"Sweep {pick.sweep}  frame {pick.frame:4d}   {pick.score:.3f} {'✓' if good else ''}")
            item.setData(Qt.ItemDataRole.UserRole, pick.frame)
            item.setToolTip("good" if good else "below the threshold")
            self.addItem(item)
