"""A fast path is used only once it keeps fp32's results on the user's own frames.

Every engine but torch's own fp32 (bf16, fp16, int8, a compiled runtime) runs, before it scores,
beside fp32 on the same frames (the sweep about to be scored, or the sample sweep the settings
name, else synthetic ones). A classification model's product is its decisions and best frame:
the fast path must make fp32's good/not-good decision on every frame and pick the same best
frame. A segmentation model's product is a mask that is drawn and measured, so it must keep
fp32's masks too: ONNX Runtime's int8 once halved the paper's SEG checkpoint's AC (76 mm against
158 mm in fp32) with every score in range. On every frame either calls good the masks must
overlap (IoU >= MASK_IOU), and on fp32's best frame (the largest mask) the AC must stay within
AC_TOLERANCE. Otherwise the engine falls back to fp32 and says why.
A verdict is kept (a model, a variant: one check on this computer, in the user cache beside what
`auto` measured), so later starts do not pay for fp32 again.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..case.measure import MeasurementError, measure_abdomen
from ..model.task import is_good
from .cache import keep_record, measured_engines_file, read_records

log = logging.getLogger(__name__)

CHECK_FRAMES = 12  # spread over the sweep's images: the full model's fp32 runs them in ~20 s on 2 cores
MASK_IOU = 0.8
AC_TOLERANCE = 0.02

_verdicts: dict[tuple[str, str], Verdict | None] = {}  # (model identity, engine variant) -> what its check found


@dataclass(frozen=True)
class Verdict:
    kept: bool
    frames: int  # how many frames were compared
    where: str  # which frames, in words
    worst_iou: float | None  # over the frames either calls good; None when none is good (or no masks)
    ac_change: float | None  # relative change of the best frame's AC; None when fp32 has no mask to measure
    decisions_kept: int | None = None  # frames whose good/not-good decision is fp32's
    same_best: bool | None = None  # the same best frame as fp32

    def describe(self) -> str:
        parts = [f"{self.frames} frames of {self.where}"]
        if self.decisions_kept is not None:
            parts.append(f"decisions kept on {self.decisions_kept} of {self.frames}")
        if self.same_best is not None:
            parts.append("best frame kept" if self.same_best else "best frame moved")
        if self.worst_iou is not None:
            parts.append(f"mask overlap down to {self.worst_iou:.2f} (needs {MASK_IOU})")
        if self.ac_change is not None:
            parts.append(f"best frame's AC {100 * self.ac_change:+.1f} % (within {100 * AC_TOLERANCE:.0f} % needed)")
        return ", ".join(parts)


def needs_check(model, precision: str, backend: str) -> bool:
    """Every path but torch's own fp32."""
    return not (backend == "torch" and precision == "fp32")


def remembered(model, variant: str) -> Verdict | None:
    key = (model.identity, variant)
    if key not in _verdicts:
        entry = _kept().get("|".join(key))
        try:
            _verdicts[key] = Verdict(**entry) if isinstance(entry, dict) else None
        except TypeError:  # another version's fields: checked again
            _verdicts[key] = None
    return _verdicts[key]


def remember(model, variant: str, verdict: Verdict) -> None:
    _verdicts[(model.identity, variant)] = verdict
    keep_record(verdicts_file(), "|".join((model.identity, variant)), dataclasses.asdict(verdict), "the fast path's check")


def forget() -> None:
    """Check every fast path again (after a model's files changed; between tests)."""
    _verdicts.clear()
    verdicts_file().unlink(missing_ok=True)


def verdicts_file() -> Path:
    return measured_engines_file().with_name("checks.json")


def _kept() -> dict:
    return read_records(verdicts_file())


def check_frames(sample: str | Path | None, first_case: Callable | None) -> tuple[np.ndarray, str]:
    """(uint8 frames, what they are): the sample sweep's, else the sweep about to be scored, else synthetic."""
    from ..case.loading import load_case
    if sample is not None:
        case, where = load_case(sample), f"the sample sweep {Path(sample).name}"
    elif first_case is not None:
        case = first_case()
        where = f"the sweep to score ({Path(case.source).name})"
    else:
        from ..case.case import Case
        from ..case.synthetic import make_case
        case, where = Case.from_array(make_case(7, frames_per_sweep=24).frames), "a synthetic sweep"
    return case.frames[case.layout.spread_image_frames(CHECK_FRAMES)], where


def compare(model, reference, candidate, where: str) -> Verdict:
    """fp32's raw outputs against the fast path's, on the same frames (torch tensors or arrays)."""
    import torch
    theirs, their_masks = model.postprocess(torch.as_tensor(np.asarray(reference, np.float32)))
    ours, our_masks = model.postprocess(torch.as_tensor(np.asarray(candidate, np.float32)))
    their_good, our_good = is_good(theirs, model.threshold), is_good(ours, model.threshold)
    if their_masks is None:  # classification: its decisions and best frame
        kept = int(np.sum(their_good == our_good))
        same_best = int(np.argmax(theirs)) == int(np.argmax(ours))
        return Verdict(kept == len(theirs) and same_best, len(theirs), where, None, None, kept, same_best)
    either = their_good | our_good
    worst = None
    if either.any():
        union = (our_masks | their_masks)[either].sum(axis=(1, 2))
        overlap = (our_masks & their_masks)[either].sum(axis=(1, 2)) / np.maximum(union, 1)
        worst = float(overlap.min())
    best = int(np.argmax(theirs))
    change = _ac_change(their_masks[best], our_masks[best])
    kept = (worst is None or worst >= MASK_IOU) and (change is None or abs(change) <= AC_TOLERANCE)
    return Verdict(kept, len(theirs), where, worst, change)


def _ac_change(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """The candidate mask's AC relative to the reference's (the spacing cancels); -1 if it has none."""
    try:
        truth = measure_abdomen(reference, 1.0).ac_mm
    except MeasurementError:
        return None  # fp32 has nothing to measure here
    try:
        ac = measure_abdomen(candidate, 1.0).ac_mm
    except MeasurementError:
        return -1.0
    assert truth is not None and ac is not None  # measured with a spacing: never unknown
    return ac / truth - 1
