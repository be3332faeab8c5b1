"""The one state object: what the user is looking at. Widgets read it and ask it to change."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..model.loading import LoadedModel
from ..selection import Pick, top_frames
from ..sweep import Sweep


class ViewerState(QObject):
    sweep_changed = Signal()
    frame_changed = Signal(int)
    scores_changed = Signal()
    threshold_changed = Signal(float)
    model_changed = Signal()

    def __init__(self):
        super().__init__()
        self.sweep: Sweep | None = None
        self.frame = 0
        self.scores = np.zeros(0, np.float32)
        self.masks: np.ndarray | None = None  # (n, 224, 224) bool for SEG models
        self.threshold = 0.5
        self.model: LoadedModel | None = None

    def set_sweep(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.scores = np.full(sweep.n_frames, np.nan, np.float32)
        self.masks = None
        self.frame = int(sweep.layout.image_frames()[0])
        self.sweep_changed.emit()
        self.scores_changed.emit()
        self.frame_changed.emit(self.frame)

    def set_frame(self, frame: int) -> None:
        if self.sweep is None:
            return
        frame = int(np.clip(frame, 0, self.sweep.n_frames - 1))
        if frame != self.frame:
            self.frame = frame
            self.frame_changed.emit(frame)

    def set_model(self, model: LoadedModel) -> None:
        self.model = model
        self.model_changed.emit()
        self.set_threshold(model.threshold)

    def set_threshold(self, threshold: float) -> None:
        if threshold != self.threshold:
            self.threshold = float(threshold)
            self.threshold_changed.emit(self.threshold)

    def reset_scores(self, scores: np.ndarray | None = None, masks: np.ndarray | None = None) -> None:
        if self.sweep is None:
            return
        self.scores = np.full(self.sweep.n_frames, np.nan, np.float32) if scores is None else scores.copy()
        self.masks = masks
        self.scores_changed.emit()

    def add_scores(self, frames: np.ndarray, scores: np.ndarray, masks: np.ndarray | None = None) -> None:
        self.scores[frames] = scores
        if masks is not None:
            if self.masks is None:
                self.masks = np.zeros((len(self.scores), 224, 224), bool)
            self.masks[frames] = masks
        self.scores_changed.emit()

    @property
    def score(self) -> float:
        return float(self.scores[self.frame]) if len(self.scores) else float("nan")

    @property
    def scored_count(self) -> int:
        return int((~np.isnan(self.scores)).sum())

    def best_frames(self, per_sweep: int = 3) -> list[Pick]:
        if self.sweep is None:
            return []
        return top_frames(self.scores, self.sweep.layout, k=per_sweep)
