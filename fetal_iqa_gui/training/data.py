"""Training data from an ACOUSLIC-AI-layout folder: the paper's split, frames streamed from volumes.

Frames are read case by case from the .mha volumes and kept once, preprocessed to 224 x 224
uint8 (pad to square, bicubic resize), in one memory-mapped cache file per split: no folder of
77,000 PNGs, and a second run starts at once.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import SimpleITK as sitk

from ..preprocess import INPUT_SIZE, square_resize
from ..synthetic import CIRCUMFERENCES_CSV, IMAGES_DIR, MASKS_DIR
from ..sweep import ACOUSLIC_SWEEPS

log = logging.getLogger(__name__)

PAPER_SPLIT_SEED = 9872398152123123767126  # the seed of the paper's split, so the split is theirs
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


@dataclass
class CaseRecord:
    uuid: str
    subject_id: str
    ac_mm: list[float | None]  # per sweep


class DatasetError(Exception):
    """A training folder that does not have the ACOUSLIC-AI layout; the message says what is missing."""


def read_cases(data_dir: Path) -> list[CaseRecord]:
    csv_path = data_dir / CIRCUMFERENCES_CSV
    if not csv_path.exists():
        raise DatasetError(f"'{data_dir}' has no {CIRCUMFERENCES_CSV} (is it in the ACOUSLIC-AI layout?)")
    cases = []
    with open(csv_path, newline="") as file:
        for row in csv.DictReader(file):
            acs = [float(row[f"sweep_{i}_ac_mm"]) if row.get(f"sweep_{i}_ac_mm") else None
                   for i in range(1, ACOUSLIC_SWEEPS + 1)]
            cases.append(CaseRecord(row["uuid"], row.get("subject_id", row["uuid"]), acs))
    for case in cases:
        for folder in (IMAGES_DIR, MASKS_DIR):
            if not (data_dir / folder / f"{case.uuid}.mha").exists():
                raise DatasetError(f"'{data_dir / folder / (case.uuid + '.mha')}' is missing")
    return cases


def split_cases(cases: list[CaseRecord], seed: int = PAPER_SPLIT_SEED, by_subject: bool = False) -> dict[str, list[CaseRecord]]:
    """70/10/20 by case as the paper (same seed and procedure), or by subject so none spans two splits."""
    rng = np.random.default_rng(seed)
    if by_subject:
        subjects = list(dict.fromkeys(c.subject_id for c in cases))
        order = rng.permutation(len(subjects))
        units = [[c for c in cases if c.subject_id == subjects[i]] for i in order]
    else:
        units = [[cases[i]] for i in rng.permutation(len(cases))]
    n = len(units)
    cut1, cut2 = int(SPLIT_FRACTIONS[0] * n), int((1 - SPLIT_FRACTIONS[2]) * n)
    flatten = lambda part: [c for unit in part for c in unit]  # noqa: E731
    return {"train": flatten(units[:cut1]), "val": flatten(units[cut1:cut2]), "test": flatten(units[cut2:])}


@dataclass
class FrameSet:
    """Preprocessed frames of a split: images (n, 224, 224) uint8, labels 0/1, masks, and provenance."""

    images: np.ndarray
    masks: np.ndarray  # (n, 224, 224) uint8 0/1
    labels: np.ndarray  # (n,) float32: 1 when the frame's mask has any annotated pixel
    classes: np.ndarray  # (n,) uint8: 0 none, 1 optimal, 2 suboptimal
    case_index: np.ndarray
    frame_index: np.ndarray
    sweep_number: np.ndarray  # 1-based
    cases: list[CaseRecord]

    def __len__(self) -> int:
        return len(self.labels)


def load_frames(data_dir: Path, cases: list[CaseRecord], cache_dir: Path | None, all_sweeps: bool = False,
                progress=None) -> FrameSet:
    """Frames of the sweeps with an AC value (or all sweeps), from the cache when it is complete."""
    digest = hashlib.sha256("|".join(c.uuid for c in cases).encode()).hexdigest()[:16]
    key = f"{len(cases)}-{digest}-{'all' if all_sweeps else 'ac'}"
    if cache_dir is not None:
        cached = _read_cache(cache_dir / f"frames-{key}.npz", cases)
        if cached is not None:
            return cached
    images, masks, classes, case_index, frame_index, sweep_number = [], [], [], [], [], []
    for index, case in enumerate(cases):
        volume = sitk.GetArrayFromImage(sitk.ReadImage(str(data_dir / IMAGES_DIR / f"{case.uuid}.mha")))
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(data_dir / MASKS_DIR / f"{case.uuid}.mha")))
        per_sweep = len(volume) // ACOUSLIC_SWEEPS
        for sweep in range(ACOUSLIC_SWEEPS):
            if not all_sweeps and case.ac_mm[sweep] is None:
                continue
            for frame in range(sweep * per_sweep, (sweep + 1) * per_sweep):
                images.append(square_resize(volume[frame]))
                mask = labels[frame]
                masks.append(square_resize((mask > 0).astype(np.uint8), interpolation=cv2.INTER_NEAREST))
                classes.append(int(mask.max()))
                case_index.append(index)
                frame_index.append(frame)
                sweep_number.append(sweep + 1)
        del volume, labels
        if progress:
            progress(index + 1, len(cases))
    empty = np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    frames = FrameSet(np.stack(images) if images else empty, np.stack(masks) if masks else empty,
                      (np.array(classes) > 0).astype(np.float32), np.array(classes, np.uint8),
                      np.array(case_index), np.array(frame_index), np.array(sweep_number), cases)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(cache_dir / f"frames-{key}.npz", images=frames.images, masks=frames.masks, classes=frames.classes,
                 case_index=frames.case_index, frame_index=frames.frame_index, sweep_number=frames.sweep_number,
                 uuids=np.array([c.uuid for c in cases]))
    return frames


def _read_cache(path: Path, cases: list[CaseRecord]) -> FrameSet | None:
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            if list(data["uuids"]) != [c.uuid for c in cases]:
                return None
            classes = data["classes"]
            return FrameSet(data["images"], data["masks"], (classes > 0).astype(np.float32), classes,
                            data["case_index"], data["frame_index"], data["sweep_number"], cases)
    except Exception as error:  # a damaged cache is rebuilt, never trusted
        log.warning("ignoring an outdated or damaged frame cache %s: %s", path, error)
        return None


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The paper's training augmentation: colour jitter (brightness, contrast +-20 %, p 0.5),
    CLAHE (p 0.5), translation +-20 % and rotation +-20 degrees (always)."""
    image = image.astype(np.float32)
    if rng.random() < 0.5:
        brightness, contrast = rng.uniform(0.8, 1.2, size=2)
        image = (image * brightness - image.mean()) * contrast + image.mean()
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        image = cv2.createCLAHE(clipLimit=float(rng.uniform(1, 4)), tileGridSize=(8, 8)).apply(image)
    size = image.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-20, 20)), 1.0)
    matrix[:, 2] += rng.uniform(-0.2, 0.2, size=2) * size
    image = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    return image, mask
