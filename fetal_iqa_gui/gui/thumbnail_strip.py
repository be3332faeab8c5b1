"""A strip of thumbnails, one per sweep: its best frame (or, when none is good, its top candidate,
marked ✘), with the score on it. Arrow keys or a click go there; the current sweep is selected."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from ..engine.preprocess import square_resize
from .state import ViewerState

THUMB_PX = 96


def thumbnail(frame: np.ndarray) -> QIcon:
    small = np.ascontiguousarray(square_resize(frame, THUMB_PX))
    image = QImage(small.data, THUMB_PX, THUMB_PX, THUMB_PX, QImage.Format.Format_Grayscale8)
    return QIcon(QPixmap.fromImage(image.copy()))  # the copy owns its pixels; `small` is freed


class ThumbnailStrip(QListWidget):
    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.viewer_state = state  # not `state`: QAbstractItemView.state() is Qt's
        self.setAccessibleName("Best frame of each sweep")
        self.setToolTip("Each sweep's best frame (✔ good, ✘ none is good: its top candidate). Click or use "
                        "the arrow keys to go there.")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.setGridSize(QSize(THUMB_PX + 24, THUMB_PX + 40))
        self.setFixedHeight(THUMB_PX + 52)
        self.shown: dict[int, int | None] = {}  # sweep number -> the frame its thumbnail shows
        self.currentItemChanged.connect(self._go)
        state.case_changed.connect(self._on_case)
        state.scores_changed.connect(self._on_scores)
        state.threshold_changed.connect(lambda _: self._on_scores(None))
        state.frame_changed.connect(self._follow)

    def _on_case(self) -> None:
        self.blockSignals(True)
        self.clear()
        self.shown = {}
        for sweep in self.viewer_state.open_case.layout.sweeps:
            item = QListWidgetItem(f"Sweep {sweep.number}\npending")
            item.setData(Qt.ItemDataRole.UserRole, None)
            self.addItem(item)
        self.blockSignals(False)
        self._follow(self.viewer_state.frame)

    def _on_scores(self, frames) -> None:
        """Update the sweeps whose frames changed; a thumbnail is redrawn only when its frame changes."""
        scored = self.viewer_state.scored
        if scored is None:
            return
        for sweep in scored.case.layout.sweeps_touching(frames):
            best = scored.best_of(sweep)
            item = self.item(sweep.number - 1)
            if best.candidate is None:
                continue
            if self.shown.get(sweep.number) != best.frame:
                item.setIcon(thumbnail(scored.case.frames[best.candidate.frame]))
                self.shown[sweep.number] = best.frame
            mark = "✔" if best.good else "✘" if best.complete else "◔"
            item.setText(f"Sweep {sweep.number}\n{mark} {best.candidate.score:.2f}")
            item.setToolTip(f"Sweep {sweep.number}: frame {best.frame}, score {best.candidate.score:.3f}, "
                            + ("good" if best.good else f"below the threshold: {best.verdict}"))
            item.setData(Qt.ItemDataRole.UserRole, best.frame)

    def _follow(self, frame: int) -> None:
        """Select the current frame's sweep, without jumping to its best frame."""
        case = self.viewer_state.case
        if case is None:
            return
        row = case.layout.sweep_of(frame).number - 1
        if row != self.currentRow():
            self.blockSignals(True)
            self.setCurrentRow(row)
            self.blockSignals(False)

    def _go(self, item: QListWidgetItem | None, _previous=None) -> None:
        frame = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if frame is not None:
            self.viewer_state.set_frame(frame)
