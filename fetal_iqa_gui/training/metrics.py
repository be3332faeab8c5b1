"""Evaluation metrics: frame-level classification metrics and the challenge's per-case scores."""

from __future__ import annotations

import numpy as np

from ..case.measure import MeasurementError, measure_abdomen
from ..model.task import is_good

MAX_FRAME_TOLERANCE = 15  # the challenge's window for the soft Dice


def classification_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, F1, precision, recall, specificity, confusion matrix and ROC-AUC of binary labels."""
    labels = np.asarray(labels).astype(bool)
    predicted = is_good(scores, threshold)
    tp = int((predicted & labels).sum())
    tn = int((~predicted & ~labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    ratio = lambda a, b: a / b if b else 0.0  # noqa: E731
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {
        "accuracy": ratio(tp + tn, len(labels)),
        "f1": ratio(2 * precision * recall, precision + recall),
        "precision": precision,
        "recall": recall,
        "specificity": ratio(tn, tn + fp),
        "roc_auc": roc_auc(labels, scores),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "threshold": threshold,
        "frames": int(len(labels)),
        "positives": int(labels.sum()),
    }


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None without both classes."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), float)
    i = 0
    while i < len(sorted_scores):  # average ranks over ties
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold that maximises F1 on (validation) labels; 0.5 when there are no positives."""
    if not np.asarray(labels).any():
        return 0.5
    candidates = np.unique(np.round(scores, 4))
    f1 = [classification_metrics(labels, scores, t)["f1"] for t in candidates]
    return float(candidates[int(np.argmax(f1))])


def wfss(gt_labels: np.ndarray, frame: int) -> float:
    """Weighted frame selection score of one case (labels: 0 none, 1 optimal, 2 suboptimal per pixel)."""
    per_frame = gt_labels.reshape(len(gt_labels), -1)
    if not per_frame.any() or frame < 0:
        return 0.0
    has_optimal_anywhere = bool((per_frame == 1).any())
    chosen = per_frame[frame]
    if (chosen == 1).any():
        return 1.0
    if (chosen == 2).any():
        return 0.6 if has_optimal_anywhere else 1.0
    return 0.0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 0.0


def soft_dice(gt_labels: np.ndarray, frame: int, pred_mask: np.ndarray, fov: np.ndarray, sweeps_of) -> float:
    """The challenge evaluator's soft Dice (its `DiceCoefficientSoft`), rule for rule.

    Dice of the prediction and the chosen frame's annotation, both inside the field of view. When
    the chosen frame has no annotation but the prediction is not empty, the evaluator compares with
    an annotated frame of the same sweep within 15 frames instead - the *previous* one if there is
    one, else the next, even when the next is nearer - whose annotation it does not cut to the field
    of view, and weighs the Dice by 1 - |offset| / 15. The one departure: where both masks are empty
    the evaluator's ITK filter reports an infinite Dice, which would make every mean infinite; we
    report 0.
    """
    if frame < 0:
        return 0.0  # the evaluator compares an empty mask with the case's last frame: 0 (or inf)
    inside = fov > 0
    pred = pred_mask & inside
    gt = (gt_labels[frame] > 0) & inside
    if gt.any() or not pred.any():
        return dice(gt, pred)
    sweep = next(s for s in sweeps_of if s.start <= frame < s.stop)
    before = range(frame - 1, max(sweep.start, frame - MAX_FRAME_TOLERANCE) - 1, -1)
    after = range(frame + 1, min(sweep.stop, frame + MAX_FRAME_TOLERANCE + 1))
    previous = next((f for f in before if gt_labels[f].any()), None)
    nearest = previous if previous is not None else next((f for f in after if gt_labels[f].any()), None)
    if nearest is None:
        return 0.0
    return dice(gt_labels[nearest] > 0, pred) * (1 - abs(nearest - frame) / MAX_FRAME_TOLERANCE)


def ac_error(pred_mask: np.ndarray | None, gt_ac_mm: float | None, spacing_mm: float, fov: np.ndarray) -> tuple[float | None, float]:
    """(predicted AC in mm, normalised absolute error); the error is 1 without a prediction or reference."""
    predicted = None
    if pred_mask is not None and pred_mask.any():
        try:
            predicted = measure_abdomen(pred_mask, spacing_mm, fov).ac_mm
        except MeasurementError:
            predicted = None
    if predicted is None or gt_ac_mm is None:
        return predicted, 1.0
    return predicted, abs(gt_ac_mm - predicted) / max(gt_ac_mm, predicted, 1e-6)


def challenge_score(cases: list[dict]) -> float:
    """0.5 (1 - mean NAE_AC) + 0.25 mean WFSS + 0.25 mean soft Dice."""
    mean = lambda key: float(np.mean([c[key] for c in cases])) if cases else 0.0  # noqa: E731
    return 0.5 * (1 - mean("nae_ac")) + 0.25 * mean("wfss") + 0.25 * mean("dice_soft")
