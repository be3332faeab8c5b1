"""Where live frames come from: a camera (a capture device shows the scanner's video output as one),
a video file or a folder of pictures, each frame cut to the image region and made grey uint8 as the
cases hold them (case/loading.py's rule: BT.601 luma).

A file or a folder is played at its own frame rate (a demonstration, a test); a camera delivers as it comes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..base.errors import FetalIqaError
from ..case.case import IMAGE_2D_SUFFIXES
from ..case.headers import MAX_ASPECT_RATIO, MAX_FRAME_SIDE, unlike_ultrasound

DEFAULT_FOLDER_RATE = 30.0  # frames/s of an image folder, which states none
_LUMA_BGR = np.array([0.114, 0.587, 0.299], np.float32)  # OpenCV's channels are blue, green, red


class LiveSourceError(FetalIqaError):
    """A live source that cannot be opened, or a region that does not fit its frames."""

    doing = "Cannot play"
    exit_code = 2  # bad input


@dataclass(frozen=True)
class Region:
    """The ultrasound image on the machine's screen: x, y of its top left corner, width, height (pixels)."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> "Region":
        """'x,y,w,h' -> Region; ValueError with the reason otherwise."""
        parts = text.replace(" ", "").split(",")
        if len(parts) != 4 or not all(part.isdigit() for part in parts):
            raise ValueError(f"{text!r} is not x,y,width,height in whole pixels")
        region = cls(*map(int, parts))
        if region.width < 1 or region.height < 1:
            raise ValueError(f"{text!r} has no area")
        return region

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"

    def cut(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y:self.y + self.height, self.x:self.x + self.width]

    def fits(self, height: int, width: int) -> bool:
        return self.x + self.width <= width and self.y + self.height <= height


AUTO_REGION_FRAMES = 30  # about a second of the scanner's video: the image's speckle moves, the screen around it not
_CHANGE_LEVEL = 12  # grey levels a pixel must swing by over those frames to be part of the image (not noise)


def find_image_region(frames: list[np.ndarray]) -> Region | None:
    """The largest region that changes over `frames` (grey, one size): the ultrasound image on the
    machine's screen, whose speckle moves while the menus, text and scales around it stay. None when
    nothing changes. Small changes apart from it (a clock, the cursor) are other, smaller regions."""
    stack = np.stack(frames)
    changing = (stack.max(axis=0).astype(np.int16) - stack.min(axis=0)) > _CHANGE_LEVEL
    closed = cv2.morphologyEx(changing.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, width, height = (int(value) for value in stats[largest, :4])
    return Region(x, y, width, height)


@dataclass
class LiveFrame:
    index: int  # its place in the recording
    image: np.ndarray  # (height, width) grey uint8, the region only
    arrived: float  # time.monotonic() when it came from the source


def to_grey(frame: np.ndarray) -> np.ndarray:
    """A frame as OpenCV reads it (grey, BGR or BGRA; 8 or 16 bits) -> grey uint8, by the cases' rule."""
    if frame.dtype != np.uint8:
        frame = cv2.normalize(frame, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if frame.ndim == 2:
        return frame
    blue, green, red = frame[..., 0], frame[..., 1], frame[..., 2]
    if np.array_equal(blue, green) and np.array_equal(green, red):  # a grey video stored as colour: exact
        return np.ascontiguousarray(blue)
    return np.clip(np.rint(frame[..., :3].astype(np.float32) @ _LUMA_BGR), 0, 255).astype(np.uint8)


class LiveSource:
    """Frames from a camera, video file or picture folder, paced at the file's rate (a camera's own pace).

    After `frames()` ends, `unplugged` says whether it stopped before its end (a camera always does:
    a camera has no end) and `ended` says how, in words."""

    def __init__(self, name: str, capture, frame_rate: float | None, is_camera: bool,
                 expected_frames: int | None, region: Region | None = None):
        self.name = name
        self.capture = capture  # anything with read() -> (ok, frame) and release(), as cv2.VideoCapture
        self.frame_rate = frame_rate
        self.is_camera = is_camera
        self.expected_frames = expected_frames
        self.region = region
        self._read_ahead: list[np.ndarray] = []  # grey frames read to find the region, delivered first
        self.delivered = 0
        self.unplugged = False
        self.ended = ""

    def find_region(self, frames: int = AUTO_REGION_FRAMES) -> Region:
        """The image region found in the first `frames` frames (`find_image_region`), which are kept
        and delivered first (the recording loses none); `LiveSourceError` when nothing changes."""
        while len(self._read_ahead) < frames:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                break
            grey = to_grey(frame)
            if self._read_ahead and grey.shape != self._read_ahead[0].shape:
                break
            self._read_ahead.append(grey)
        found = find_image_region(self._read_ahead) if len(self._read_ahead) >= 2 else None
        if found is None:
            raise LiveSourceError(self.name, f"nothing changes in its first {len(self._read_ahead)} frames, so the "
                                  "image region cannot be found", "Give the region (x,y,width,height), or "
                                  "start the video once the scanner is imaging.")
        self.region = found
        return found

    def frames(self, stop=None) -> Iterator[LiveFrame]:
        """Each frame as it is due; `stop` (a threading.Event) ends the stream between frames."""
        period = 0.0 if self.is_camera or not self.frame_rate else 1.0 / self.frame_rate
        started = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                if period:
                    due = started + self.delivered * period
                    if (wait := due - time.monotonic()) > 0:
                        time.sleep(wait)
                if self._read_ahead:  # read to find the region: delivered first, in order
                    yield LiveFrame(self.delivered, self._cut(self._read_ahead.pop(0)), time.monotonic())
                    self.delivered += 1
                    continue
                try:
                    ok, frame = self.capture.read()
                except Exception as error:  # a driver that raises where OpenCV's returns False
                    ok, frame, self.ended = False, None, f"reading it failed ({error})"
                arrived = time.monotonic()
                if not ok or frame is None:
                    self._note_end()
                    return
                yield LiveFrame(self.delivered, self._cut(to_grey(frame)), arrived)
                self.delivered += 1
            self.ended = "stopped"
        finally:
            self.capture.release()

    def _cut(self, grey: np.ndarray) -> np.ndarray:
        if self.region is None:
            return grey
        if not self.region.fits(*grey.shape):
            raise LiveSourceError(self.name, f"the region {self.region} does not fit its frames of "
                                  f"{grey.shape[1]} x {grey.shape[0]} px",
                                  "Give a region inside the frame (x,y,width,height).")
        return np.ascontiguousarray(self.region.cut(grey))

    def _note_end(self) -> None:
        early = self.is_camera or (self.expected_frames is not None and self.delivered < self.expected_frames)
        self.unplugged = early
        if not early:
            self.ended = self.ended or "end of file"
        elif not self.ended:
            self.ended = ("it stopped delivering frames (unplugged?)" if self.is_camera else
                          f"it stopped delivering frames after {self.delivered} of {self.expected_frames}")


def open_source(text: str | os.PathLike, region: Region | None = None,
                folder_rate: float = DEFAULT_FOLDER_RATE) -> LiveSource:
    """A camera by its index ('0'), a video file, or a folder of pictures (played in name order)."""
    text = str(text)
    if text.isdigit():
        capture = cv2.VideoCapture(int(text))
        if not capture.isOpened():
            raise LiveSourceError(f"camera {text}", "no camera answers at that index",
                                  "Check that the capture device is plugged in, or try another index.")
        rate = capture.get(cv2.CAP_PROP_FPS)  # what it says it delivers: the gaps beyond it are dropped frames
        return LiveSource(f"camera {text}", capture, rate if rate > 0 else None, True, None, region)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_2D_SUFFIXES and p.is_file())
        if not files:
            raise LiveSourceError(path, "the folder holds no pictures",
                                  f"Give a folder of {', '.join(IMAGE_2D_SUFFIXES)} files, a video file or a camera.")
        return LiveSource(path.name, _PictureFolder(files), folder_rate, False, len(files), region)
    if not path.is_file():
        raise LiveSourceError(path, "there is no such file or folder", "Give a video file, a picture folder or a camera index.")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise LiveSourceError(path, "OpenCV cannot read it as a video", "Give a video file (.mkv, .avi, .mp4...).")
    try:
        check_frame_size(path, int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    except LiveSourceError:
        capture.release()
        raise
    rate = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return LiveSource(path.name, capture, rate if rate > 0 else DEFAULT_FOLDER_RATE, False, count if count > 0 else None,
                      region)


def check_frame_size(name: str | os.PathLike, width: int, height: int) -> None:
    """Refuse, before a frame is decoded, a size no ultrasound picture has, as a case's is refused
    (case/headers.py): a small file can declare gigapixel frames, gigabytes to decode and convert."""
    if width > 0 and height > 0 and unlike_ultrasound(width, height):
        raise LiveSourceError(name, f"its frames are {width} x {height} px, not an ultrasound picture (fetal-iqa "
                              f"plays frames of at most {MAX_FRAME_SIDE} px a side and {MAX_ASPECT_RATIO}:1 in shape)",
                              "The file may be damaged; give another video or picture folder.")


def _picture_size(path: Path) -> tuple[int, int]:
    """(width, height) from a picture's header alone; (0, 0) when its header cannot be read (OpenCV then says)."""
    import SimpleITK as sitk
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return 0, 0
    size = reader.GetSize()
    return (size[0], size[1]) if len(size) >= 2 else (0, 0)


class _PictureFolder:
    """A folder of pictures read as cv2.VideoCapture reads a video."""

    def __init__(self, files: list[Path]):
        self.files = iter(files)

    def read(self):
        path = next(self.files, None)
        if path is None:
            return False, None
        check_frame_size(path, *_picture_size(path))
        frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise OSError(f"'{path.name}' is not a picture OpenCV reads")
        return True, frame

    def release(self) -> None:
        self.files = iter(())


def write_lossless_video(path: str | os.PathLike, frames: np.ndarray, frame_rate: float = 30.0) -> Path:
    """(n, height, width) grey uint8 frames as an FFV1 .mkv, which plays back bit for bit: a case made a
    live source (demonstrations, tests, the benchmark)."""
    path = Path(path)
    height, width = frames.shape[1:]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"FFV1"), frame_rate, (width, height), isColor=False)
    if not writer.isOpened():
        raise LiveSourceError(path, "this OpenCV cannot write FFV1 video", "Write an image folder instead.")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path
