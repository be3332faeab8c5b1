"""Which frames to look at: best frames, top-k with temporal non-maximum suppression, good runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..case.case import CaseLayout
from ..model.task import is_good

DEFAULT_SMOOTHING = 5  # frames; single-frame spikes are less reliable than a run
NMS_RADIUS = 10  # frames: one pick per run of good frames


@dataclass(frozen=True)
class Pick:
    frame: int
    sweep: int
    score: float


def smoothed(scores: np.ndarray, window: int = DEFAULT_SMOOTHING) -> np.ndarray:
    """Moving average over `window` frames, ignoring unscored (NaN) frames; NaN stays NaN."""
    if window <= 1:
        return scores.copy()
    valid = ~np.isnan(scores)
    kernel = np.ones(window)
    total = np.convolve(np.where(valid, scores, 0.0), kernel, mode="same")
    count = np.convolve(valid.astype(float), kernel, mode="same")
    out = np.where(valid & (count > 0), total / np.maximum(count, 1), np.nan)
    return out.astype(np.float32)


def top_frames(scores: np.ndarray, layout: CaseLayout, k: int = 3, radius: int = NMS_RADIUS,
               per_sweep: bool = True, minimum: float = -np.inf) -> list[Pick]:
    """The k highest-scoring frames (per sweep, or overall), no two within `radius` frames."""
    groups = layout.sweeps if per_sweep else (None,)
    picks = []
    for sweep in groups:
        frames = layout.image_frames(sweep)
        frames = frames[~np.isnan(scores[frames])]
        chosen: list[int] = []
        for frame in frames[np.argsort(-scores[frames], kind="stable")]:
            if len(chosen) == k or not is_good(scores[frame], minimum):
                break
            if all(abs(frame - c) > radius for c in chosen):
                chosen.append(int(frame))
        picks += [Pick(f, layout.sweep_of(f).number, float(scores[f])) for f in chosen]
    return picks


def best_frame(scores: np.ndarray, layout: CaseLayout, sweep=None) -> Pick | None:
    frames = layout.image_frames(sweep)
    frames = frames[~np.isnan(scores[frames])]
    if len(frames) == 0:
        return None
    frame = int(frames[np.argmax(scores[frames])])
    return Pick(frame, layout.sweep_of(frame).number, float(scores[frame]))


def good_runs(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Runs [start, stop) of consecutive frames scoring at or above the threshold."""
    good = np.concatenate([[False], is_good(scores, threshold), [False]])
    edges = np.flatnonzero(np.diff(good.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def next_good(scores: np.ndarray, threshold: float, frame: int, direction: int = 1) -> int | None:
    """The nearest good frame after (direction 1) or before (-1) `frame`, or None."""
    good = np.flatnonzero(is_good(scores, threshold))
    later = good[good > frame] if direction > 0 else good[good < frame][::-1]
    return int(later[0]) if len(later) else None


def largest_area_frame(areas: np.ndarray, layout: CaseLayout) -> int:
    """The challenge entrants' rule for SEG models: the frame with the largest segmented area, -1 if none."""
    frames = layout.image_frames()
    frames = frames[~np.isnan(areas[frames])]
    if len(frames) == 0 or np.nanmax(areas[frames]) <= 0:
        return -1
    return int(frames[np.argmax(areas[frames])])
