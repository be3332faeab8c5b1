"""Each sweep's best frame, honestly: the top frame if it reaches the threshold; "none good" only
once every frame of the sweep is scored ("none good yet" with how much is scored until then), the
top candidate marked as below the threshold. Click or move the selection with the keys to go there."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from ..review.scored_case import SweepBest
from .state import ViewerState

GOOD_TEXT = QColor("#2ecc71")
BELOW_TEXT = QColor("#9a9a9a")
PENDING_TEXT = QColor("#4aa3ff")  # as the worklist's "scoring"


def describe(best: SweepBest) -> tuple[str, str]:
    """(row text, tooltip) of one sweep's answer."""
    pick = best.candidate
    if pick is None:
        tip = "This sweep has only padding frames" if best.n_images == 0 else "No frame of this sweep has a score yet"
        return f"Sweep {best.sweep}   {best.verdict}", tip
    so_far = "" if best.complete else f" so far ({best.percent_scored} % of its frames scored)"
    if best.good:
        return f"Sweep {best.sweep}   ✔ frame {pick.frame:4d}   {pick.score:.3f}", f"The sweep's best frame{so_far}: good"
    if not best.complete:
        return (f"Sweep {best.sweep}   ◔ {best.verdict}",
                f"No frame scored so far reaches the threshold; the rest of the sweep may. The row goes to "
                f"its highest-scoring frame{so_far}, {pick.frame} ({pick.score:.3f})")
    return (f"Sweep {best.sweep}   ✘ none good (top {pick.score:.3f})",
            f"No frame of this sweep reaches the threshold; the row goes to its highest-scoring frame, {pick.frame}")


def colour(best: SweepBest) -> QColor:
    return GOOD_TEXT if best.good else BELOW_TEXT if best.complete else PENDING_TEXT


class BestFramesWidget(QListWidget):
    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.viewer_state = state  # not `state`: QAbstractItemView.state() is Qt's
        self.setAccessibleName("Best frame per sweep")
        self.setToolTip("Each sweep's best frame (✔) or, when none is good, its top candidate (✘; ◔ while "
                        "the sweep is partly scored). Click, or use the arrow keys, to go there.")
        # as wide as its longest row, which a scroll bar would otherwise cut at "(12 % sc"
        widest = max(self.fontMetrics().horizontalAdvance(text) for text in (
            "Sweep 10   ◔ none good yet (99 % scored)", "Sweep 10   ✘ none good (top 0.999)"))
        self.setMinimumWidth(widest + 2 * self.frameWidth() + self.verticalScrollBar().sizeHint().width() + 12)
        self.currentItemChanged.connect(self._go)
        self.itemClicked.connect(self._go)
        state.case_changed.connect(self._on_case)
        state.scores_changed.connect(self._on_scores)
        state.threshold_changed.connect(lambda _: self._on_scores(None))

    def _on_case(self) -> None:
        self.blockSignals(True)
        self.clear()
        for _ in self.viewer_state.open_case.layout.sweeps:
            self.addItem(QListWidgetItem())
        self.blockSignals(False)
        self._on_scores(None)

    def _on_scores(self, frames) -> None:
        """Rewrite the rows of the sweeps whose frames changed (all of them for None), in place."""
        scored = self.viewer_state.scored
        if scored is None:
            return
        for sweep in scored.case.layout.sweeps_touching(frames):
            best = scored.best_of(sweep)
            item = self.item(sweep.number - 1)
            text, tip = describe(best)
            item.setText(text)
            item.setToolTip(tip)
            item.setData(Qt.ItemDataRole.UserRole, best.frame)
            item.setForeground(QBrush(colour(best)))

    def _go(self, item: QListWidgetItem | None, _previous=None) -> None:
        frame = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if frame is not None:
            self.viewer_state.set_frame(frame)

