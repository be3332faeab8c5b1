"""The one state object: what the user is looking at. Widgets read it and ask it to change.

It wraps a Qt-free `ScoredCase` (the case, its scores, the threshold, the model) and turns each
change into a signal that says what changed, so that widgets redraw only that. Of its own it
holds the current frame, the measurement selected on it, and the measurements' undo history.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..review.measurement_history import MeasurementChange, MeasurementHistory
from ..review.scored_case import ScoredCase
from ..case.case import Case
from ..case.spacing import Spacing
from ..case.study import Study


class ViewerState(QObject):
    case_changed = Signal()  # a new sweep: everything changed
    frame_changed = Signal(int)
    scores_changed = Signal(object)  # the frames whose scores changed (an index array)
    threshold_changed = Signal(float)
    model_changed = Signal()
    calipers_changed = Signal(int)  # the frame whose kept measurements changed
    spacing_changed = Signal()  # the case's pixel spacing, entered by the user
    study_changed = Signal()  # the case's patient and exam, entered by the user
    measurement_selected = Signal(object)  # the index of the current frame's selected measurement, or None

    def __init__(self):
        super().__init__()
        self.scored: ScoredCase | None = None
        self.frame = 0
        self.selected: int | None = None  # of the current frame's measurements
        self.history = MeasurementHistory()

    # -- what widgets read -------------------------------------------------------------------

    @property
    def case(self) -> Case | None:
        return self.scored.case if self.scored else None

    @property
    def open_scored(self) -> ScoredCase:
        """`scored` where a sweep is open for sure: what acts on or shows a sweep runs only after `set_case`."""
        assert self.scored is not None, "no sweep is open"
        return self.scored

    @property
    def open_case(self) -> Case:
        return self.open_scored.case

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

    @property
    def calipers(self) -> list:
        """The measurements kept on the current frame."""
        return self.scored.calipers.get(self.frame, []) if self.scored else []

    # -- what widgets ask ----------------------------------------------------------------------

    def set_case(self, case: Case) -> None:
        """A newly opened sweep, not yet scored."""
        self.scored = ScoredCase(case)
        self.frame = int(case.layout.image_frames()[0])
        self.selected = None
        self.history.clear()
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
        self.open_scored.add(frames, scores, masks)
        self.scores_changed.emit(np.asarray(frames))

    def set_frame(self, frame: int) -> None:
        if self.scored is None:
            return
        frame = int(np.clip(frame, 0, self.scored.case.n_frames - 1))
        if frame != self.frame:
            self.frame, self.selected = frame, None
            self.frame_changed.emit(frame)

    def set_calipers(self, frame: int, calipers: list) -> None:
        """Measurements that were kept before (a restored review): not a change the user can undo."""
        self.open_scored.set_calipers(frame, calipers)
        self._calipers_changed(frame)

    def change_calipers(self, frame: int, calipers: list, what: str) -> None:
        """The user kept, edited or deleted a measurement (`what` says which): undoable."""
        self.history.change(self.open_scored, frame, calipers, what)
        self._calipers_changed(frame)

    def undo(self) -> MeasurementChange | None:
        return self._apply(self.history.undo)

    def redo(self) -> MeasurementChange | None:
        return self._apply(self.history.redo)

    def _apply(self, step) -> MeasurementChange | None:
        """Undo or redo on the frame it changed, so that the user sees what came back or went."""
        change = step(self.scored) if self.scored else None
        if change is not None:
            self.set_frame(change.frame)
            self._calipers_changed(change.frame)
        return change

    def _calipers_changed(self, frame: int) -> None:
        if frame == self.frame:
            self.selected = None  # the indices moved: the caller selects again what it means
        self.calipers_changed.emit(frame)

    def set_spacing(self, spacing: Spacing) -> int:
        """The spacing the user entered; the kept measurements are measured again (how many changed)."""
        changed = self.open_scored.set_spacing(spacing)
        self.spacing_changed.emit()
        self.calipers_changed.emit(self.frame)  # the list and the labels show the new values
        return changed

    def set_study(self, study: Study) -> None:
        """The patient and exam the user entered for a file that names none. Set on the case itself (not
        a copy): its scoring and every output made from it later (the report, DICOM) carry them."""
        self.open_case.study = study
        self.study_changed.emit()

    def select_measurement(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self.calipers):
            index = None
        if index != self.selected:
            self.selected = index
            self.measurement_selected.emit(index)

    def set_threshold(self, threshold: float) -> None:
        if self.scored is not None and float(threshold) != self.scored.threshold:
            self.scored.threshold = float(threshold)
            self.threshold_changed.emit(self.scored.threshold)
