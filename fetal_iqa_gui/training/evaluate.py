"""Evaluation reports: frame level for a model on a split, challenge level for predictions on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from ..case.acouslic import CHALLENGE_FRAME_JSON, CHALLENGE_MASK, MASKS_DIR, SWEEPS, load_fov_mask
from ..model.loading import LoadedModel
from ..engine.preprocess import normalise
from ..case.case import CaseLayout
from ..base.text import counted
from ..base.fileio import check_regular, read_regular
from .data import FrameSet, read_cases
from .metrics import ac_error, challenge_score, classification_metrics, soft_dice, wfss


class ChallengeInputError(Exception):
    """Predictions or ground truth not in the expected layout."""


def predict_frames(model: LoadedModel, frames: FrameSet, batch_size: int = 32) -> np.ndarray:
    model.merge()
    scores = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            images = torch.from_numpy(normalise(frames.images[start:start + batch_size]))
            scores.append(model.predict(images)[0])
    return np.concatenate(scores) if scores else np.zeros(0)


def frame_report(model: LoadedModel, frames: FrameSet) -> dict:
    """Frame-level metrics at the model's threshold, and each sweep's best frame."""
    scores = predict_frames(model, frames)
    metrics = classification_metrics(frames.labels, scores, model.threshold)
    sweeps = []
    for case_index, case in sorted(set(zip(frames.case_index.tolist(), frames.sweep_number.tolist()))):
        chosen = np.flatnonzero((frames.case_index == case_index) & (frames.sweep_number == case))
        best = chosen[np.argmax(scores[chosen])]
        sweeps.append({"case": frames.cases[case_index].uuid, "sweep": int(case),
                       "best_frame": int(frames.frame_index[best]), "score": float(scores[best]),
                       "label": int(frames.classes[best]), "sweep_has_annotation": bool(frames.labels[chosen].any())})
    annotated = [s for s in sweeps if s["sweep_has_annotation"]]
    hit = np.mean([s["label"] > 0 for s in annotated]) if annotated else 0.0
    table = [f"model: {model.name}",
             f"frames: {metrics['frames']} ({metrics['positives']} positive), threshold {model.threshold:.3f}",
             "  ".join(f"{k} {metrics[k]:.4f}" for k in ("accuracy", "f1", "precision", "recall", "specificity")),
             f"ROC-AUC {metrics['roc_auc']:.4f}" if metrics["roc_auc"] is not None else "ROC-AUC n/a",
             f"confusion [[TN FP] [FN TP]]: {metrics['confusion_matrix']}",
             f"annotated sweeps whose best frame is annotated: {hit:.1%} of {len(annotated)}"]
    return {"frame_level": metrics, "sweeps": sweeps, "best_frame_annotated_fraction": float(hit), "table": table}


def evaluate_challenge(pred_dir: Path, gt_dir: Path, spacing_mm: float = 0.28) -> dict:
    """Per case WFSS, soft Dice, AC and its NAE, and the challenge score, as the challenge defines them."""
    try:
        cases = {c.uuid: c for c in read_cases(gt_dir, folders=(MASKS_DIR,))}
    except Exception as error:
        raise ChallengeInputError(f"ground truth: {error}") from None
    fov = load_fov_mask()
    results = []
    for case_dir in sorted(p for p in Path(pred_dir).iterdir() if p.is_dir()):
        uuid = case_dir.name
        if uuid not in cases:
            raise ChallengeInputError(f"prediction '{uuid}' has no ground truth in '{gt_dir}'")
        try:  # each a regular file: a pipe would block for good
            frame = int(json.loads(read_regular(case_dir / CHALLENGE_FRAME_JSON)))
            predicted = sitk.GetArrayFromImage(sitk.ReadImage(_regular(case_dir / CHALLENGE_MASK)))
        except (OSError, ValueError, RuntimeError) as error:
            raise ChallengeInputError(f"'{getattr(error, 'filename', None) or case_dir}': {error}") from None
        try:
            gt = sitk.GetArrayFromImage(sitk.ReadImage(_regular(gt_dir / MASKS_DIR / f"{uuid}.mha")))
        except (OSError, RuntimeError) as error:
            raise ChallengeInputError(f"ground truth '{uuid}': {error}") from None
        # the evaluator refuses these two (an assertion and an exception); we say which case and why
        if not np.isin(predicted, (0, 1)).all():
            raise ChallengeInputError(f"'{case_dir / CHALLENGE_MASK}' is not a 0/1 mask")
        if not -1 <= frame < len(gt):
            raise ChallengeInputError(f"'{case_dir / CHALLENGE_FRAME_JSON}': frame {frame} is outside the case's "
                                      f"{len(gt)} frames (use -1 for none)")
        if predicted.shape not in (gt.shape, gt.shape[1:]):
            raise ChallengeInputError(f"'{case_dir / CHALLENGE_MASK}' is {predicted.shape}, the case is {gt.shape}")
        layout = CaseLayout.equal_sweeps(np.zeros(len(gt), bool), SWEEPS)
        mask = np.zeros(gt.shape[1:], bool)
        if frame >= 0:  # the challenge's 3-D volume holds the chosen frame's mask at that frame
            mask = (predicted[frame] if predicted.ndim == 3 else predicted) > 0
        case = layout.sweep_of(frame).number if frame >= 0 else None
        gt_ac = cases[uuid].ac_mm[case - 1] if case else None
        case_fov = fov if fov.shape == mask.shape else np.ones_like(mask)
        ac_mm, nae = ac_error(mask if frame >= 0 else None, gt_ac, spacing_mm, case_fov)
        results.append({"uuid": uuid, "frame": frame, "sweep": case, "wfss": wfss(gt, frame),
                        "dice_soft": soft_dice(gt, frame, mask, case_fov, layout.sweeps),
                        "ac_mm": ac_mm, "ac_gt_mm": gt_ac, "nae_ac": nae})
    if not results:
        raise ChallengeInputError(f"'{pred_dir}' holds no case folders")
    score = challenge_score(results)
    table = [f"{'case':38} {'frame':>5} {'WFSS':>5} {'Dice':>6} {'AC mm':>7} {'GT mm':>7} {'NAE':>6}"]
    for r in results:
        table.append(f"{r['uuid']:38} {r['frame']:5d} {r['wfss']:5.2f} {r['dice_soft']:6.3f} "
                     f"{(r['ac_mm'] or 0):7.1f} {(r['ac_gt_mm'] or 0):7.1f} {r['nae_ac']:6.3f}")
    table.append(f"challenge score {score:.4f} over {counted(len(results), 'case')}")
    return {"cases": results, "score": score,
            "mean": {k: float(np.mean([r[k] for r in results])) for k in ("wfss", "dice_soft", "nae_ac")},
            "table": table}


def _regular(path: Path) -> str:
    """`path` for ITK, once it is known to be a regular file (`NotRegularFile` otherwise)."""
    check_regular(path)
    return str(path)
