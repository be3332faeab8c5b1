"""Each sweep's best frame, honestly: the top frame if it reaches the threshold, else "no good frame"
with the top candidate marked as below it. Click or move the selection with the keys to go there."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from ..review.scored_case import SweepBest
from .state import ViewerState

GOOD_TEXT = QColor("#2ecc71")
BELOW_TEXT = QColor("#9a9a9a")


def describe(best: SweepBest) -> tuple[str, str]:
    """(row text, tooltip) of one sweep's answer."""
    pick = best.candidate
    if pick is None:
        return f"Sweep {best.sweep}   not scored yet", "No frame of this sweep has a score yet"
    if best.good:
        return f"Sweep {best.sweep}   ✔ frame {pick.frame:4d}   {pick.score:.3f}", "The sweep's best frame: good"
    return (f"Sweep {best.sweep}   ✘ none good (top {pick.score:.3f})",
            f"No frame of this sweep reaches the threshold; the row goes to its highest-scoring frame, {pick.frame}")


class BestFramesWidget(QListWidget):
    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.setAccessibleName("Best frame per sweep")
        self.setToolTip("Each sweep's best frame (✔) or, when none is good, its top candidate (✘). "
                        "Click, or use the arrow keys, to go there.")
        self.setMinimumWidth(240)
        self.currentItemChanged.connect(self._go)
        self.itemClicked.connect(self._go)
        state.case_changed.connect(self._on_case)
        state.scores_changed.connect(self._on_scores)
        state.threshold_changed.connect(lambda _: self._on_scores(None))

    def _on_case(self) -> None:
        self.blockSignals(True)
        self.clear()
        for sweep in self.state.case.layout.sweeps:
            self.addItem(QListWidgetItem())
        self.blockSignals(False)
        self._on_scores(None)

    def _on_scores(self, frames) -> None:
        """Rewrite the rows of the sweeps whose frames changed (all of them for None), in place."""
        if self.state.scored is None:
            return
        for sweep in self.state.case.layout.sweeps_touching(frames):
            best = self.state.scored.best_of(sweep)
            item = self.item(sweep.number - 1)
            text, tip = describe(best)
            item.setText(text)
            item.setToolTip(tip)
            item.setData(Qt.ItemDataRole.UserRole, best.frame)
            item.setForeground(QBrush(GOOD_TEXT if best.good else BELOW_TEXT))

    def _go(self, item: QListWidgetItem | None, _previous=None) -> None:
        frame = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if frame is not None:
            self.state.set_frame(frame)

