"""Batch scoring for the command line: many sweeps, one CSV each, a summary, resumable."""

from __future__ import annotations

import csv
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache
from .export import ModelInfo, export_frame, write_challenge_output, write_scores_csv
from .fileio import ExportError, atomic_write
from .measure import MeasurementError, measure_abdomen
from .preprocess import unsquare_mask
from .progress import ProgressBar
from .scoring import Engine, Throughput, score_sweep
from .selection import best_frame, largest_area_frame
from .sweep import IMAGE_2D_SUFFIXES, VOLUME_SUFFIXES, Sweep, SweepLoadError, load_sweep

log = logging.getLogger(__name__)

SEG_INPUT_PIXELS = 224 * 224


@dataclass
class SweepScores:
    """Everything scoring produced for one sweep."""

    scores: np.ndarray  # NaN for padding and unscored frames
    masks: np.ndarray | None  # (n, 224, 224) bool for SEG models (zeros where unscored)

    @property
    def mask_area_px(self) -> np.ndarray | None:
        return None if self.masks is None else self.masks.reshape(len(self.masks), -1).sum(axis=1)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders searched (not recursively) for sweep files, or taken as a DICOM series."""
    found = []
    for path in paths:
        try:
            inside = sorted(p for p in path.iterdir() if p.is_file()
                            and p.name.lower().endswith(VOLUME_SUFFIXES + IMAGE_2D_SUFFIXES)) if path.is_dir() else []
        except OSError:  # a path in or of a folder we may not open: load_sweep says so, naming it
            inside = []
        volumes = [p for p in inside if not p.name.lower().endswith((".dcm", ".dicom"))]
        found += volumes if volumes else [path]
    return found


def cached_scores(sweep: Sweep, model_identity: str, segmentation: bool) -> SweepScores | None:
    """What the score cache holds for this sweep and model, or None."""
    cached = cache.load_scores(sweep.content_hash, model_identity, sweep.n_frames)
    if not cached:
        return None
    scores, packed = cached
    masks = None
    if packed is not None:
        masks = np.unpackbits(packed, axis=1, count=SEG_INPUT_PIXELS).reshape(-1, 224, 224).astype(bool)
    elif segmentation:
        return None
    return SweepScores(scores, masks)


def score_all(engine: Engine, sweep: Sweep, use_cache: bool = True, on_batch=None, should_stop=None) -> SweepScores:
    """Score every image frame, from the cache where it has them, saving what was computed.

    `on_batch(batch)` sees each batch; `should_stop()` is asked between batches (a cancel).
    """
    model = engine.model
    known = masks = None
    cached = cached_scores(sweep, model.identity, model.is_segmentation) if use_cache else None
    if cached:
        known, masks = cached.scores, cached.masks
    scores = np.full(sweep.n_frames, np.nan, np.float32) if known is None else known.copy()
    if model.is_segmentation and masks is None:
        masks = np.zeros((sweep.n_frames, 224, 224), bool)
    try:
        for batch in score_sweep(engine, sweep, known):
            scores[batch.frames] = batch.scores
            if batch.masks is not None:
                masks[batch.frames] = batch.masks
            if on_batch:
                on_batch(batch)
            if should_stop and should_stop():
                break
    finally:  # partial results are worth keeping too
        if use_cache:
            packed = None if masks is None else np.packbits(masks.reshape(len(masks), -1), axis=1)
            cache.save_scores(sweep.content_hash, model.identity, scores, packed)
    return SweepScores(scores, masks)


def frame_mask(result: SweepScores, sweep: Sweep, frame: int) -> np.ndarray | None:
    """The SEG mask of a frame at the frame's own resolution."""
    if result.masks is None:
        return None
    return unsquare_mask(result.masks[frame], sweep.frames.shape[1:])


def measure_frame(result: SweepScores, sweep: Sweep, frame: int) -> float | None:
    mask = frame_mask(result, sweep, frame)
    if mask is None or not mask.any():
        return None
    try:
        return measure_abdomen(mask, sweep.spacing_mm[0]).ac_mm
    except MeasurementError:
        return None


def score_paths(args, engine: Engine) -> int:
    model = engine.model
    info = ModelInfo(model.name, model.identity, model.threshold, model.is_demo)
    paths = expand_paths(args.paths)
    summary = []
    failed = 0
    for path in paths:
        csv_path = args.out or (args.out_dir / f"{path.name.split('.')[0]}_scores.csv" if args.out_dir else None)
        if csv_path and csv_path.exists() and args.out_dir and not args.out:
            print(f"skipping {path.name}: {csv_path.name} exists (finished earlier)", file=sys.stderr)
            continue
        try:
            sweep = load_sweep(path)
        except SweepLoadError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        images = sweep.layout.n_images
        progress = ProgressBar(f"{path.name} [{engine.description}]", images)
        throughput = Throughput(images)

        def on_batch(batch):
            throughput.add(len(batch.frames))
            if batch.notice:
                print(f"\nnote: {batch.notice}", file=sys.stderr)
            progress.update(throughput.done, extra=f"{throughput.frames_per_second:.1f} frames/s")

        result = score_all(engine, sweep, not args.no_cache, on_batch)
        progress.update(images)
        progress.close()
        try:
            rows = summarise(args, sweep, result, info, csv_path)
        except ExportError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        summary += rows
    if args.out_dir and summary:
        write_summary(args.out_dir / "summary.csv", summary)
    if failed:
        print(f"{failed} of {len(paths)} inputs failed.", file=sys.stderr)
    return 2 if failed else 0


def summarise(args, sweep: Sweep, result: SweepScores, info: ModelInfo, csv_path: Path | None) -> list[dict]:
    """Write the sweep's outputs; print and return one summary row per probe sweep."""
    if csv_path:
        write_scores_csv(csv_path, sweep, result.scores, info.threshold, result.mask_area_px, overwrite=bool(args.out))
    rows, parts = [], []
    for slot in sweep.layout.slots:
        pick = best_frame(result.scores, sweep.layout, slot)
        ac = measure_frame(result, sweep, pick.frame) if pick else None
        rows.append({"file": sweep.source.name, "sweep": slot.number, "best_frame": pick.frame if pick else "",
                     "score": f"{pick.score:.4f}" if pick else "", "good": int(bool(pick and pick.score >= info.threshold)),
                     "ac_mm": f"{ac:.1f}" if ac else ""})
        parts.append(f"sweep {slot.number}: " + (f"frame {pick.frame} ({pick.score:.3f})" if pick else "no image frames")
                     + (f" AC {ac:.1f} mm" if ac else ""))
        if pick and args.export_best:
            export_frame(sweep, pick.frame, pick.score, info, args.export_best, ac_mm=ac, overwrite=True)
    print(f"{sweep.source.name}: best " + "; ".join(parts))
    if args.challenge_output:
        write_challenge(args.challenge_output, sweep, result, info)
    return rows


def write_challenge(out_dir: Path, sweep: Sweep, result: SweepScores, info: ModelInfo) -> None:
    """The challenge's frame choice: SEG models take the largest area, CLS models the best score
    (smoothed over 5 frames), if it counts as good; -1 otherwise."""
    from .selection import smoothed
    if result.masks is not None:
        frame = largest_area_frame(result.mask_area_px.astype(float), sweep.layout)
    else:
        pick = best_frame(smoothed(result.scores), sweep.layout)
        frame = pick.frame if pick and pick.score >= info.threshold else -1
    mask = frame_mask(result, sweep, frame) if frame >= 0 else None
    case_id = sweep.source.name.split(".")[0]
    write_challenge_output(out_dir, case_id, frame, mask, sweep.frames.shape, sweep.spacing_mm, overwrite=True)


def write_summary(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda f: f.write(text.getvalue().encode()), overwrite=True)
