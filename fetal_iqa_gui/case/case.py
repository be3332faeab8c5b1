"""A case: the frames of one file (every probe sweep of an exam), their spacing, and how they divide.

A case is a (frames, height, width) uint8 volume. All-zero frames are padding (the ACOUSLIC-AI
files pad each 140-frame sweep with them); the frames between divide into probe sweeps.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .acouslic import CASE_FRAMES, DEFAULT_SPACING_MM, FRAMES_PER_SWEEP, SWEEPS
from .spacing import Box, Spacing, given
from .study import Study


IMAGE_2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VOLUME_SUFFIXES = (".mha", ".mhd", ".nii", ".nii.gz", ".nrrd", ".nhdr", ".dcm", ".dicom")


@dataclass(frozen=True)
class Sweep:
    """One probe sweep inside the volume: frames [start, stop), 1-based `number`."""

    number: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def __contains__(self, frame: int) -> bool:
        return self.start <= frame < self.stop


@dataclass(frozen=True)
class CaseLayout:
    """How the frames of a volume divide into probe sweeps, and which are padding."""

    sweeps: tuple[Sweep, ...]
    padding: np.ndarray = field(repr=False)  # bool per frame

    @classmethod
    def equal_sweeps(cls, padding: np.ndarray, count: int) -> "CaseLayout":
        n = len(padding)
        if count < 1 or n % count:
            raise ValueError(f"{n} frames do not divide into {count} equal sweeps")
        size = n // count
        return cls(tuple(Sweep(i + 1, i * size, (i + 1) * size) for i in range(count)), padding)

    @classmethod
    def detect(cls, padding: np.ndarray) -> "CaseLayout":
        """The challenge's 6 slots of 140 frames when the file has that layout (each slot's images,
        then its padding); otherwise a sweep per run of images, each followed by its padding."""
        if len(padding) == CASE_FRAMES and _fills_slots(padding, FRAMES_PER_SWEEP):
            return cls.equal_sweeps(padding, SWEEPS)
        image = ~padding
        starts = np.flatnonzero(image & ~np.r_[False, image[:-1]])  # the first frame of each run of images
        bounds = [0, *starts[1:].tolist(), len(padding)]  # leading padding belongs to the first sweep
        return cls(tuple(Sweep(i + 1, a, b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))), padding)

    def padding_runs(self) -> list[tuple[int, int]]:
        """[start, stop) of each run of padding frames: what the timeline greys out."""
        edges = np.diff(np.r_[0, self.padding.astype(np.int8), 0])
        return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))

    @property
    def n_frames(self) -> int:
        return len(self.padding)

    @property
    def n_images(self) -> int:
        """Frames that are images (not padding): what scoring has to do."""
        return int(np.count_nonzero(~self.padding))

    def sweep_of(self, frame: int) -> Sweep:
        for sweep in self.sweeps:
            if frame in sweep:
                return sweep
        raise IndexError(f"frame {frame} is outside the volume of {self.n_frames} frames")

    def image_frames(self, sweep: Sweep | None = None) -> np.ndarray:
        """Indices of the non-padding frames, of one sweep or of all."""
        frames = np.flatnonzero(~self.padding)
        if sweep is not None:
            frames = frames[(frames >= sweep.start) & (frames < sweep.stop)]
        return frames

    def spread_image_frames(self, count: int) -> np.ndarray:
        """At most `count` image frames spread evenly over the whole case: a sample of what it holds."""
        images = self.image_frames()
        return images[np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).astype(int))]

    def sweeps_touching(self, frames: np.ndarray | None) -> list[Sweep]:
        """The sweeps holding any of `frames` (all of them for None): what a change of those frames changes."""
        if frames is None:
            return list(self.sweeps)
        frames = np.asarray(frames)
        return [sweep for sweep in self.sweeps if ((frames >= sweep.start) & (frames < sweep.stop)).any()]

    def padding_frames(self, sweep: Sweep) -> np.ndarray:
        return np.flatnonzero(self.padding[sweep.start:sweep.stop]) + sweep.start


@dataclass
class Case:
    """A loaded case: its frames (every probe sweep of the file), their spacing, source and layout."""

    frames: np.ndarray  # (n, height, width) uint8
    spacing: Spacing  # (x, y) mm per pixel and where it came from; unknown when nothing states it
    source: Path
    content_hash: str
    layout: CaseLayout
    study: Study = Study()  # the patient and exam, from a DICOM header; empty otherwise
    us_regions: tuple[Box, ...] = ()  # where a DICOM header's ultrasound regions lie on the frame; none otherwise
    dicom_file: Path | None = None  # the DICOM file whose header was read (DICOM outputs copy more of it); None otherwise

    @classmethod
    def from_array(cls, frames: np.ndarray, source: str | os.PathLike = "<memory>",
                   spacing_mm: tuple[float, float] | Spacing | None = (DEFAULT_SPACING_MM, DEFAULT_SPACING_MM),
                   sweeps: int | None = None) -> "Case":
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        padding = find_padding(frames)
        layout = CaseLayout.detect(padding) if sweeps is None else CaseLayout.equal_sweeps(padding, sweeps)
        if not isinstance(spacing_mm, Spacing):
            spacing_mm = (given(spacing_mm, "given with the frames") if spacing_mm is not None
                          else Spacing(None, "not given with the frames"))
        return cls(frames, spacing_mm, Path(source), hash_frames(frames), layout)

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        """(x, y) mm per pixel, None when unknown (every measurement in mm asks `check_spacing`)."""
        return self.spacing.mm

    @property
    def n_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.frames.shape[2], self.frames.shape[1]

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes

    @property
    def case_id(self) -> str:
        return case_id(self.source)


def case_id(path: str | os.PathLike) -> str:
    """The file's name less its format's extension ('a.v2.mha' -> 'a.v2', 'b.nii.gz' -> 'b'): output
    names derive from it, so two files that differ only after the first dot must not share one."""
    name = Path(path).name
    lowered = name.lower()
    for suffix in sorted(VOLUME_SUFFIXES + IMAGE_2D_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name or "sweep"  # a DICOM folder, a file without extension, or one named only '.mha'


def _fills_slots(padding: np.ndarray, size: int) -> bool:
    """Every slot of `size` frames holds its images first and its padding after (no image after padding)."""
    slots = padding.reshape(-1, size)
    return not (slots[:, :-1] & ~slots[:, 1:]).any()


def find_padding(frames: np.ndarray) -> np.ndarray:
    """True for every all-zero frame: padding, not an image."""
    return frames.reshape(frames.shape[0], -1).max(axis=1) == 0


def hash_frames(frames: np.ndarray) -> str:
    """Content hash of the pixels (not the file): the same volume in two formats hashes alike."""
    digest = hashlib.sha256()
    digest.update(str(frames.shape).encode())
    digest.update(np.ascontiguousarray(frames).data.cast("B"))
    return digest.hexdigest()
