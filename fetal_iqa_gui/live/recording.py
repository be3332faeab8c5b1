"""A live session recorded as it arrives, so that a crash keeps what was recorded.

While it records, the frames go to `NAME.mha.recording/frames.raw` (appended and flushed frame by frame)
beside a MetaImage header, `recording.mhd`, rewritten every second with the count so far: after a crash
that folder opens as a case as it is (`fetal-iqa gui NAME.mha.recording/recording.mhd`). When the session
ends the frames become one ordinary `NAME.mha` (uncompressed: lossless, copied in constant memory), with
`NAME.live.json` beside it: each frame's time and the sweep marks.

A sweep mark is an all-zero frame put between two sweeps: how a case's layout tells its sweeps apart
(case/case.py `CaseLayout.detect`); the sidecar names those frames (their time is null).
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..base.errors import WriteError
from ..base.fileio import NotRegularFile, atomic_write, check_replaceable
from .source import LiveFrame, Region

HEADER_EVERY_S = 1.0
RAW_NAME, HEADER_NAME, TIMES_NAME = "frames.raw", "recording.mhd", "times.json"
_COPY_BYTES = 16 * 2**20


def _write_bytes(data: bytes, file) -> None:
    file.write(data)


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".mha") + ".live.json")


def working_folder(path: Path) -> Path:
    return path.with_name(path.name + ".recording")


class Recording:
    """Frames appended to disk as they come; `finish()` makes the case file."""

    def __init__(self, path: str | Path, source: str, frame_rate: float | None, region: Region | None = None,
                 spacing_mm: float | None = None, overwrite: bool = False):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mha":
            raise WriteError(self.path, "a recording is a MetaImage file", "Give a name ending in .mha.")
        for taken in (self.path, sidecar_path(self.path)):  # the times of another recording: only replaced when asked
            try:
                check_replaceable(taken)
            except NotRegularFile as error:  # never replaced, even with --force
                raise WriteError(taken, str(error), "Give the name of a regular file, or remove what is there.") from None
            if taken.exists() and not overwrite:
                raise WriteError(taken, "the file exists", "Choose another name, or replace it (--force).")
        self.work = working_folder(self.path)
        if self.work.exists():
            raise WriteError(self.path, f"an unfinished recording is in '{self.work.name}' (its "
                             f"{HEADER_NAME} opens as a case)", "Open or move it, or choose another name.")
        self.overwrite = overwrite
        self.info = {"source": source, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "frame_rate": frame_rate, "region": None if region is None else str(region),
                     "spacing_mm": spacing_mm}
        self.times: list[float | None] = []  # seconds from the first frame; None: a sweep mark's blank frame
        self.shape: tuple[int, int] | None = None
        self._first: float | None = None
        self._written_header = 0.0
        self._finished: Path | WriteError | None = None  # what finish() gave (a second call gives it again)
        try:
            self.work.mkdir(parents=True)
            self._raw = open(self.work / RAW_NAME, "wb", buffering=0)  # each frame whole on disk, or taken back
        except OSError as error:
            raise WriteError(self.path, f"its recording folder cannot be made ({error.strerror})",
                             "Choose a folder you can write to.") from None

    @property
    def n_frames(self) -> int:
        return len(self.times)

    @property
    def sweep_starts(self) -> list[int]:
        return [0] + [i + 1 for i, t in enumerate(self.times) if t is None] if self.times else []

    def append(self, frame: LiveFrame) -> None:
        if self.shape is None:
            self.shape, self._first = frame.image.shape, frame.arrived
        elif frame.image.shape != self.shape:
            raise WriteError(self.path, f"the source's frames changed size (from {self.shape[1]} x {self.shape[0]} "
                             f"to {frame.image.shape[1]} x {frame.image.shape[0]} px)",
                             "Keep the capture's resolution fixed while recording, or give a region.")
        assert self._first is not None  # set with the shape, by the first frame
        self._write(frame.image, round(frame.arrived - self._first, 6))

    def mark_sweep(self) -> bool:
        """The next frame starts a new sweep; False where none has begun (nothing recorded, or just marked)."""
        if not self.times or self.times[-1] is None:
            return False
        assert self.shape is not None  # a frame is recorded
        self._write(np.zeros(self.shape, np.uint8), None)
        return True

    def _write(self, image: np.ndarray, when: float | None) -> None:
        data = np.ascontiguousarray(image).data.cast("B")
        try:
            written = 0
            while written < len(data):  # unbuffered: in the operating system's hands, a crash loses nothing
                written += self._raw.write(data[written:])
        except OSError as error:  # a full disk: the frame written in part is taken back, the others kept
            self._raw.truncate(self._frame_bytes * self.n_frames)
            raise WriteError(self.path, f"recording stopped: {error.strerror}", "Free some space.") from None
        self.times.append(when)
        if time.monotonic() - self._written_header >= HEADER_EVERY_S:
            self._write_header()

    @property
    def _frame_bytes(self) -> int:
        assert self.shape is not None  # set by the first frame
        return self.shape[0] * self.shape[1]

    def _write_header(self) -> None:
        """The recording folder's header and times, with the frames so far. On a full disk (no room for the
        new file that replaces a header whole) each is rewritten in place: otherwise the folder would open
        with the frames of the last header that could be written (up to a second's worth fewer)."""
        self._written_header = time.monotonic()
        for name, text in ((HEADER_NAME, self._header(RAW_NAME)), (TIMES_NAME, self._sidecar())):
            try:
                atomic_write(self.work / name, functools.partial(_write_bytes, text), overwrite=True)
            except WriteError:
                try:
                    with open(self.work / name, "r+b") as file:
                        file.write(text)
                        file.truncate()
                except OSError:
                    raise WriteError(self.path, "the disk is full: its recording folder's header could not be "
                                     "brought up to date", "Free some space.") from None

    def _header(self, data_file: str) -> bytes:
        assert self.shape is not None  # written after the first frame
        height, width = self.shape
        spacing = self.info["spacing_mm"] or 1.0  # 1 x 1: "no calibration" to every reader (case/spacing.py)
        return (f"ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
                f"CompressedData = False\nDimSize = {width} {height} {self.n_frames}\n"
                f"ElementSpacing = {spacing} {spacing} 1\nElementType = MET_UCHAR\n"
                f"ElementDataFile = {data_file}\n").encode()

    def _sidecar(self) -> bytes:
        return json.dumps({**self.info, "frames": self.n_frames, "sweep_starts": self.sweep_starts,
                           "frame_times_s": self.times}, indent=1).encode()

    def finish(self) -> Path | None:
        """The case file and its sidecar, written whole; the recording folder removed. None: nothing recorded.
        Where the case file cannot be written (a full disk), `WriteError` says that the folder keeps the frames."""
        if isinstance(self._finished, WriteError):
            raise self._finished
        if self._finished is not None or self._raw.closed:
            return self._finished
        self._raw.close()
        if not self.times:
            shutil.rmtree(self.work, ignore_errors=True)
            return None
        try:
            self._write_header()  # the folder stays a case until the file below is whole

            def copy(file):
                file.write(self._header("LOCAL"))
                with open(self.work / RAW_NAME, "rb") as raw:
                    shutil.copyfileobj(raw, file, _COPY_BYTES)
            atomic_write(self.path, copy, overwrite=self.overwrite)
            atomic_write(sidecar_path(self.path), lambda file: file.write(self._sidecar()), overwrite=True)
        except WriteError as error:
            self._finished = WriteError(self.path, f"{error.problem}; the {self.n_frames} frames recorded are kept in "
                                        f"'{self.work}' (its {HEADER_NAME} opens as a case)", error.advice)
            raise self._finished from None
        shutil.rmtree(self.work, ignore_errors=True)
        self._finished = self.path
        return self.path
