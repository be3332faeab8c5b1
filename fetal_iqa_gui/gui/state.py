"""The one state object: what the user is looking at. Widgets read it and ask it to change.

It wraps a Qt-free `ScoredCase` (the case, its scores, the threshold, the model) and turns each
change into a signal that says what changed, so that widgets redraw only that. Of its own it
holds only the current frame.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..review.scored_case import ScoredCase
from ..case.case import Case
from ..case.spacing import Spacing


class ViewerState(QObject):
    case_changed = Signal()  # a new sweep: everything changed
    frame_changed = Signal(int)
    scores_changed = Signal(object)  # the frames whose scores changed (an index array)
    threshold_changed = Signal(float)
    model_changed = Signal()
    calipers_changed = Signal(int)  # the frame whose kept measurements changed
    spacing_changed = Signal()  # the case's pixel spacing, entered by the user

    def __init__(self):
        super().__init__()
        self.scored: ScoredCase | None = None
        self.frame = 0

    # -- what widgets read -------------------------------------------------------------------

    @property
    def case(self) -> Case | None:
        return self.scored.case if self.scored else None

    @property
    def scores(self) -> np.ndarray:
        return self.scored.scores if self.scored else np.zeros(0, np.float32)

    @property
    def masks(self) -> np.ndarray | None:
        return self.scored.masks if self.scored else None

    @property
    def threshold(self) -> float:
        return self.scored.threshold if self.scored else 0.5

    @property
    def model(self):
        return self.scored.model if self.scored else None

    @property
    def score(self) -> float:
        return float(self.scores[self.frame]) if self.scored else float("nan")

    @property
    def scored_count(self) -> int:
        return self.scored.n_scored if self.scored else 0

    # -- what widgets ask ----------------------------------------------------------------------

    def set_case(self, case: Case) -> None:
        """A newly opened sweep, not yet scored."""
        self.scored = ScoredCase(case)
        self.frame = int(case.layout.image_frames()[0])
        self.case_changed.emit()
        self.scores_changed.emit(None)
        self.frame_changed.emit(self.frame)

    def set_scored(self, scored: ScoredCase, threshold: float | None = None) -> None:
        """The same sweep, now with a model and what the cache knew; `threshold` overrides the model's."""
        if threshold is not None:
            scored.threshold = threshold
        self.scored = scored
        self.model_changed.emit()
        self.threshold_changed.emit(scored.threshold)  # always: the widgets show the model's own
        self.scores_changed.emit(None)

    def add_scores(self, frames: np.ndarray, scores: np.ndarray, masks: np.ndarray | None = None) -> None:
        self.scored.add(frames, scores, masks)
        self.scores_changed.emit(np.asarray(frames))

    def set_frame(self, frame: int) -> None:
        if self.scored is None:
            return
        frame = int(np.clip(frame, 0, self.case.n_frames - 1))
        if frame != self.frame:
            self.frame = frame
            self.frame_changed.emit(frame)

    def set_calipers(self, frame: int, calipers: list) -> None:
        self.scored.set_calipers(frame, calipers)
        self.calipers_changed.emit(frame)

    def set_spacing(self, spacing: Spacing) -> None:
        self.scored.set_spacing(spacing)
        self.spacing_changed.emit()

    def set_threshold(self, threshold: float) -> None:
        if self.scored is not None and float(threshold) != self.scored.threshold:
            self.scored.threshold = float(threshold)
            self.threshold_changed.emit(self.scored.threshold)
