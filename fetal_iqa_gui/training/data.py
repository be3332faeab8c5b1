"""Training data from an ACOUSLIC-AI-layout folder: the paper's split, frames streamed from volumes.

Frames are read case by case from the .mha volumes and kept once, preprocessed to 224 x 224
uint8 (pad to square, bicubic resize), in memory-mapped cache files per split: no folder of
77,000 PNGs, no need for the split to fit in memory, and a second run starts at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import SimpleITK as sitk

from ..base.errors import WriteError
from ..base.fileio import read_regular
from ..engine.preprocess import INPUT_SIZE, square_resize
from ..case.acouslic import CIRCUMFERENCES_CSV, IMAGES_DIR, MASKS_DIR, SWEEPS

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


def read_cases(data_dir: Path, folders=(IMAGES_DIR, MASKS_DIR)) -> list[CaseRecord]:
    """The cases of the AC table; each must have a file in every one of `folders` (the challenge's
    ground truth for evaluating predictions is the masks and the table, without the images)."""
    csv_path = data_dir / CIRCUMFERENCES_CSV
    if not csv_path.exists():
        raise DatasetError(f"'{data_dir}' has no {CIRCUMFERENCES_CSV} (is it in the ACOUSLIC-AI layout?)")
    cases = []
    try:
        text = read_regular(csv_path).decode("utf-8")  # a pipe there would block for good
    except OSError as error:
        raise DatasetError(f"'{csv_path}' cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise DatasetError(f"'{csv_path}' is not UTF-8 text") from None
    for row in csv.DictReader(io.StringIO(text, newline="")):
        acs = [float(row[f"sweep_{i}_ac_mm"]) if row.get(f"sweep_{i}_ac_mm") else None
               for i in range(1, SWEEPS + 1)]
        cases.append(CaseRecord(row["uuid"], row.get("subject_id", row["uuid"]), acs))
    for case in cases:
        for folder in folders:
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
    """Frames of the sweeps with an AC value (or all sweeps), preprocessed once.

    With a cache folder, the frames are written straight into memory-mapped `.npy` files there and
    read from them next time, so a split never has to fit in memory (the paper's training split
    is about 4 GB at 224 x 224 with its masks); without one, they are kept in memory.
    """
    digest = hashlib.sha256("|".join(c.uuid for c in cases).encode()).hexdigest()[:16]
    folder = None if cache_dir is None else cache_dir / f"frames-{len(cases)}-{digest}-{'all' if all_sweeps else 'ac'}"
    if folder is not None:
        cached = _read_cache(folder, cases)
        if cached is not None:
            return cached
    used = [_sweeps_used(data_dir, case, all_sweeps) for case in cases]
    total = sum(per_sweep * len(sweeps) for per_sweep, sweeps in used)
    staging = None
    images: np.ndarray  # memory-mapped into the cache folder, or in memory
    masks: np.ndarray
    if folder is not None and total:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
        images = np.lib.format.open_memmap(staging / "images.npy", "w+", np.uint8, (total, INPUT_SIZE, INPUT_SIZE))
        masks = np.lib.format.open_memmap(staging / "masks.npy", "w+", np.uint8, (total, INPUT_SIZE, INPUT_SIZE))
    else:
        images = np.empty((total, INPUT_SIZE, INPUT_SIZE), np.uint8)
        masks = np.empty_like(images)
    classes, case_index, frame_index, sweep_number = (np.zeros(total, dtype) for dtype in (np.uint8, int, int, int))
    row = 0
    try:
        for index, (case, (per_sweep, sweeps)) in enumerate(zip(cases, used)):
            volume = sitk.GetArrayFromImage(sitk.ReadImage(str(data_dir / IMAGES_DIR / f"{case.uuid}.mha")))
            labels = sitk.GetArrayFromImage(sitk.ReadImage(str(data_dir / MASKS_DIR / f"{case.uuid}.mha")))
            for sweep in sweeps:
                for frame in range(sweep * per_sweep, (sweep + 1) * per_sweep):
                    images[row] = square_resize(volume[frame])
                    masks[row] = square_resize((labels[frame] > 0).astype(np.uint8), interpolation=cv2.INTER_NEAREST)
                    classes[row], case_index[row], frame_index[row], sweep_number[row] = \
                        labels[frame].max(), index, frame, sweep + 1
                    row += 1
            del volume, labels
            if progress:
                progress(index + 1, len(cases))
        if staging is None:
            return FrameSet(images, masks, (classes > 0).astype(np.float32), classes, case_index, frame_index,
                            sweep_number, cases)
        cast(np.memmap, images).flush()  # staged: open_memmap's maps
        cast(np.memmap, masks).flush()
        del images, masks  # closes the maps
        assert folder is not None  # only a cache folder is staged
        np.savez(staging / "index.npz", classes=classes, case_index=case_index, frame_index=frame_index,
                 sweep_number=sweep_number, uuids=np.array([c.uuid for c in cases]))
        shutil.rmtree(folder, ignore_errors=True)  # an outdated or damaged cache of the same name
        os.replace(staging, folder)
        staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    written = _read_cache(folder, cases)
    if written is None:  # its reason is logged: never handed on as frames
        raise WriteError(folder, "the frame cache just written there could not be read back")
    return written


def case_frames(data_dir: Path, case: CaseRecord) -> int:
    """The number of frames of a case's image volume, from its header alone."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(data_dir / IMAGES_DIR / f"{case.uuid}.mha"))
    reader.ReadImageInformation()
    return reader.GetSize()[2]


def _sweeps_used(data_dir: Path, case: CaseRecord, all_sweeps: bool) -> tuple[int, list[int]]:
    """(frames per sweep, the 0-based sweeps to use) of a case."""
    per_sweep = case_frames(data_dir, case) // SWEEPS
    return per_sweep, [s for s in range(SWEEPS) if all_sweeps or case.ac_mm[s] is not None]


def _read_cache(folder: Path, cases: list[CaseRecord]) -> FrameSet | None:
    if not (folder / "index.npz").exists():
        return None
    try:
        with np.load(folder / "index.npz") as index:
            if list(index["uuids"]) != [c.uuid for c in cases]:
                return None
            classes = index["classes"]
            images = np.load(folder / "images.npy", mmap_mode="r")
            masks = np.load(folder / "masks.npy", mmap_mode="r")
            if not len(images) == len(masks) == len(classes):
                raise ValueError("its files do not hold the same number of frames")
            return FrameSet(images, masks, (classes > 0).astype(np.float32), classes,
                            index["case_index"], index["frame_index"], index["sweep_number"], cases)
    except Exception as error:  # a damaged cache is rebuilt, never trusted
        log.warning("ignoring an outdated or damaged frame cache %s: %s", folder, error)
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
