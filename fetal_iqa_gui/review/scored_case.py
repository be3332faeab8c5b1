"""A scored case: a case, its scores so far, and the questions both front doors ask of it.

Which frame is best in each sweep (and is it good at all?), where the next good frame is, what a
frame's mask and abdominal circumference are, and what an export writes. The GUI's `ViewerState`
wraps one and turns its changes into signals; the command line reads one to write its outputs.
Qt-free and torch-free: a case job fills it (`runs.job.CaseJob`), nothing here runs the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..base.errors import ExportRefused, FetalIqaError, NameTaken, WriteError
from ..model.task import DEFAULT_THRESHOLDS, is_good
from .export import (ModelInfo, export_frame, frame_pixels, heat_map_image, overlay_image, scores_csv,
                     write_challenge_output, write_scores_csv)
from .privacy import BlankingRefused, ImageArea, image_area
from ..case.measure import Measurement, MeasurementError, measure_abdomen
from ..engine.preprocess import INPUT_SIZE, unsquare_mask
from .selection import Pick, best_frame, good_runs, largest_area_frame, next_good, smoothed, top_frames
from ..case.spacing import Spacing
from ..case.case import Case, Sweep
from ..base.text import counted


@dataclass(frozen=True)
class SweepBest:
    """One probe sweep's answer to "which frame?": its top candidate, and whether that is good."""

    sweep: int  # 1-based
    candidate: Pick | None  # the highest score so far; None while nothing in the sweep is scored
    good: bool  # the candidate reaches the threshold: only then is it the sweep's best frame
    n_scored: int = 0  # of the sweep's image frames
    n_images: int = 0

    @property
    def frame(self) -> int | None:
        return self.candidate.frame if self.candidate else None

    @property
    def complete(self) -> bool:
        """Every image frame is scored: only then may a sweep be said to have no good frame."""
        return self.n_scored >= self.n_images

    @property
    def percent_scored(self) -> int:
        """Rounded into 1-99 while partly scored: never "100 %" a frame short, nor "0 %" with a score."""
        if self.complete:
            return 100
        return min(99, max(1, 100 * self.n_scored // self.n_images)) if self.n_scored else 0

    @property
    def verdict(self) -> str:
        """The sweep's answer in words, as every front door says it."""
        if self.n_images == 0:
            return "no image frames"
        if self.candidate is None:
            return "not scored yet"
        if self.good:
            return "good"
        return "none good" if self.complete else f"none good yet ({self.percent_scored} % scored)"


@dataclass
class ExportReport:
    """What an export of several frames did, for one message to the user."""

    written: list[Path] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)  # exported frames
    below_threshold: list[int] = field(default_factory=list)  # of those, marked as not good
    problems: list[FetalIqaError] = field(default_factory=list)
    cancelled: bool = False
    blanked: str | None = None  # what was blanked of the exported pixels (privacy.py); None: as recorded

    @property
    def folder_failed(self) -> bool:
        """A write failed for the folder's sake (read-only, full, gone), not for a name already taken."""
        return any(isinstance(p, WriteError) and not isinstance(p, NameTaken) for p in self.problems)

    def message(self, folder: Path) -> str:
        text = f"Exported {counted(len(self.frames), 'frame')} to {folder}"
        if self.below_threshold:
            text += f" ({len(self.below_threshold)} below the threshold, marked so in their names)"
        if self.blanked and self.frames:
            text += f", blanked {self.blanked}"
        text += "."
        if self.cancelled:
            text += " Cancelled: the rest was not exported."
        if self.problems:
            text += f" {len(self.problems)} not exported: {self.problems[0]}"
        return text


class ScoredCase:
    """A case's scores (NaN where unscored or padding), SEG masks, model, and the threshold a frame
    is judged by (the user's; the model's own until the user chooses one)."""

    def __init__(self, case: Case, model: ModelInfo | None = None, scores: np.ndarray | None = None,
                 masks: np.ndarray | None = None, threshold: float | None = None):
        self.case = case
        self.model = model
        self.scores = np.full(case.n_frames, np.nan, np.float32) if scores is None else scores.astype(np.float32)
        self.masks = masks  # (n, 224, 224) bool for SEG models
        self.threshold = float(threshold if threshold is not None else model.own_threshold if model
                               else DEFAULT_THRESHOLDS["classification"])
        self._measurements: dict[int, Measurement | None] = {}  # an ellipse fit per frame is worth keeping
        self.calipers: dict[int, list] = {}  # frame -> the user's accepted calipers (calipers.py)

    def copy(self) -> "ScoredCase":
        masks = None if self.masks is None else self.masks.copy()
        copy = ScoredCase(self.case, self.model, self.scores.copy(), masks, self.threshold)
        copy.calipers = {frame: list(kept) for frame, kept in self.calipers.items()}
        return copy

    # -- what scoring adds ---------------------------------------------------------------------

    def add(self, frames: np.ndarray, scores: np.ndarray, masks: np.ndarray | None = None) -> None:
        self.scores[frames] = scores
        if masks is not None:
            if self.masks is None:
                self.masks = np.zeros((self.case.n_frames, INPUT_SIZE, INPUT_SIZE), bool)
            self.masks[frames] = masks
            for frame in np.asarray(frames).tolist():
                self._measurements.pop(frame, None)

    @property
    def n_scored(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.scores)))

    @property
    def n_pending(self) -> int:
        return self.case.layout.n_images - self.n_scored

    # -- which frames ------------------------------------------------------------------------

    def is_good(self, frame: int) -> bool | None:
        """None while the frame is unscored (or padding)."""
        score = self.scores[frame]
        return None if math.isnan(score) else is_good(score, self.threshold)

    def best_of(self, sweep: Sweep) -> SweepBest:
        pick = best_frame(self.scores, self.case.layout, sweep)
        images = self.case.layout.image_frames(sweep)
        return SweepBest(sweep.number, pick, bool(pick and is_good(pick.score, self.threshold)),
                         int(np.count_nonzero(~np.isnan(self.scores[images]))), len(images))

    def best_per_sweep(self) -> list[SweepBest]:
        return [self.best_of(sweep) for sweep in self.case.layout.sweeps]

    def best_frame(self) -> Pick | None:
        """The highest-scoring frame of the whole case, good or not (the B key goes there)."""
        return best_frame(self.scores, self.case.layout)

    def top_frames(self, per_sweep: int = 3) -> list[Pick]:
        """Up to `per_sweep` good frames of each sweep, one per run of good frames."""
        return top_frames(self.scores, self.case.layout, k=per_sweep, minimum=self.threshold)

    def good_frames(self) -> np.ndarray:
        return np.flatnonzero(is_good(self.scores, self.threshold))

    def good_runs(self) -> list[tuple[int, int]]:
        return good_runs(self.scores, self.threshold)

    def next_good(self, frame: int, direction: int = 1) -> int | None:
        return next_good(self.scores, self.threshold, frame, direction)

    # -- masks and measurement -----------------------------------------------------------------

    @property
    def mask_area_px(self) -> np.ndarray | None:
        """Mask pixels per frame in the model's 224 x 224 space (SEG models)."""
        return None if self.masks is None else self.masks.reshape(len(self.masks), -1).sum(axis=1)

    def mask_of(self, frame: int) -> np.ndarray | None:
        """The SEG mask of a scored frame at the frame's own resolution; None without one."""
        if self.masks is None or math.isnan(self.scores[frame]) or not self.masks[frame].any():
            return None
        return unsquare_mask(self.masks[frame], self.case.frames.shape[1:])

    def measurement_of(self, frame: int) -> Measurement | None:
        """The abdominal circumference of the frame's mask, as the challenge measures it."""
        if frame not in self._measurements:
            mask = self.mask_of(frame)
            try:
                self._measurements[frame] = None if mask is None else measure_abdomen(mask, self.case.spacing_mm)
            except MeasurementError:
                self._measurements[frame] = None
        return self._measurements[frame]

    def chosen_frame(self, best: SweepBest) -> int | None:
        """The frame a sweep's review keeps: the first one measured on, else the sweep's best."""
        sweep = self.case.layout.sweeps[best.sweep - 1]
        measured = sorted(frame for frame in self.calipers if frame in sweep and not self.case.layout.padding[frame])
        return measured[0] if measured else best.frame

    def set_spacing(self, spacing: Spacing) -> int:
        """A spacing the user entered (the file states none, or a wrong one): the model's ACs and the
        kept calipers are measured again with it (a correction, not a second calibration); returns
        how many kept measurements changed."""
        self.case.spacing = spacing
        self._measurements.clear()
        changed = 0
        for frame, calipers in self.calipers.items():
            changed += sum(c.spacing_mm != spacing.mm for c in calipers)
            self.calipers[frame] = [replace(c, spacing_mm=spacing.mm) for c in calipers]
        return changed

    def set_calipers(self, frame: int, calipers: list) -> None:
        """The measurements the user accepted on a frame (none: cleared); exports and reports carry them."""
        if calipers:
            self.calipers[frame] = list(calipers)
        else:
            self.calipers.pop(frame, None)

    # -- exports ---------------------------------------------------------------------------

    def caption(self, frame: int, measurement: Measurement | None = None) -> str:
        sweep = self.case.layout.sweep_of(frame)
        return (f"frame {frame}, sweep {sweep.number}, score {float(self.scores[frame]):.3f}"
                + (f", {measurement.describe_ac()}" if measurement else "")
                + (" (demo model)" if self.model and self.model.is_demo else ""))

    def overlay_of(self, frame: int, measurement: Measurement | None = None, area: ImageArea | None = None) -> np.ndarray:
        return overlay_image(frame_pixels(self.case, frame, area), self.caption(frame, measurement),
                             self.mask_of(frame), measurement.ellipse if measurement else None)

    def heat_map_image(self, explainer, frame: int, area: ImageArea | None = None) -> np.ndarray:
        """The frame's heat map over its pixels (blanked as the export is), labelled: the map explains
        the model's score on the pixels as recorded, which is what the model scored."""
        heat = explainer.heat_map(self.case.content_hash, frame, self.case.frames[frame])
        return heat_map_image(frame_pixels(self.case, frame, area), heat)

    def export(self, frames, folder: str | Path, overlay: bool = False, overwrite: bool = False,
               rename: bool = False, should_stop=None, on_frame=None, source_name_only: bool = False,
               blank: bool = False, explainer=None) -> ExportReport:
        """Export frames (PNG + sidecar, optionally an overlay copy); each refusal is reported, not raised.
        With an `explainer` (engine/explain.py's `Explainer`), each frame's heat map too, beside it.

        `on_frame(done, total)` is told after each frame; `should_stop()` is asked before each.
        `blank`: every pixel outside the image is 0 (privacy.py); a case whose image region
        nothing states exports nothing.
        """
        report = ExportReport()
        if self.model is None:
            report.problems.append(ExportRefused("the sweep is not scored yet"))
            return report
        try:
            area = image_area(self.case) if blank else None
        except BlankingRefused as error:
            report.problems.append(error)
            return report
        report.blanked = area.blanked if area else None
        frames = [int(f) for f in frames]
        for done, frame in enumerate(frames):
            if should_stop and should_stop():
                report.cancelled = True
                break
            measurement = self.measurement_of(frame)
            try:
                report.written += export_frame(
                    self.case, frame, float(self.scores[frame]), self.model, self.threshold, folder,
                    overlay=self.overlay_of(frame, measurement, area) if overlay else None,
                    ac_mm=measurement.ac_mm if measurement else None, overwrite=overwrite, rename=rename,
                    calipers=self.calipers.get(frame), source_name_only=source_name_only, area=area,
                    heat_map=self.heat_map_image(explainer, frame, area) if explainer else None)
            except FetalIqaError as error:
                report.problems.append(error)
            else:
                report.frames.append(frame)
                if not self.is_good(frame):
                    report.below_threshold.append(frame)
            if on_frame:
                on_frame(done + 1, len(frames))
        return report

    def csv_bytes(self) -> bytes:
        """The scores CSV, as `write_csv` writes it (for standard output)."""
        return scores_csv(self.case, self.scores, self.threshold, self.mask_area_px)

    def write_csv(self, path: str | Path, overwrite: bool = False) -> Path:
        return write_scores_csv(path, self.case, self.scores, self.threshold, self.mask_area_px, overwrite)

    def challenge_choice(self) -> int:
        """The challenge's frame: SEG models take the largest mask, CLS models the best score smoothed
        over 5 frames if it counts as good; -1 for none."""
        area = self.mask_area_px
        if area is not None:
            return largest_area_frame(area.astype(float), self.case.layout)
        pick = best_frame(smoothed(self.scores), self.case.layout)
        return pick.frame if pick and is_good(pick.score, self.threshold) else -1

    def write_challenge(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        frame = self.challenge_choice()
        mask = self.mask_of(frame) if frame >= 0 else None
        return write_challenge_output(out_dir, self.case.case_id, frame, mask, self.case.frames.shape,
                                      self.case.spacing_mm, overwrite)

