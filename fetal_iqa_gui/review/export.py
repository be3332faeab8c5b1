"""Exports: frames as lossless PNG with a JSON sidecar, scores as CSV, the challenge's format.

Every write is atomic (temporary file, then rename) and never replaces an existing file unless
asked to. The PNG holds the original pixels at native resolution, or, when asked, the same with
everything outside the image blanked (privacy.py); an overlay copy is optional.
"""

from __future__ import annotations

import functools
import json
import math
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..case.acouslic import CHALLENGE_FRAME_JSON, CHALLENGE_MASK
from ..base.errors import ExportRefused
from ..model.task import is_good
from ..base.fileio import Writer, atomic_write, safe_name, write_image, write_together
from ..base.text import csv_bytes
from ..case.case import Case
from ..case.measure import implausible_ac
from .privacy import ImageArea, burned_in_annotation

SCORE_COLUMNS = ("frame", "sweep", "padding", "score", "good")

# The sidecar's fields, declared once: (name, description). The help text and the tests use this table.
SIDECAR_FIELDS = (
    ("source", "absolute path of the sweep file the frame comes from (its name only, if so chosen)"),
    ("source_sha256", "content hash of the sweep's pixels"),
    ("frame", "0-based frame index in the volume"),
    ("sweep", "1-based sweep number"),
    ("frame_in_sweep", "0-based frame index within its sweep"),
    ("score", "the model's score of this frame"),
    ("threshold", "the threshold a frame must reach to count as good"),
    ("good", "whether the score reaches the threshold"),
    ("model", "the model's name"),
    ("model_identity", "hash identifying the model's weights and adapter"),
    ("demo_model", "true when the demo model (synthetic data, not for clinical use) scored it"),
    ("pixel_spacing_mm", "[x, y] pixel spacing in millimetres; null when the file states none"),
    ("pixel_spacing_source", "where the spacing came from: a DICOM tag, an ultrasound region, the header, the user"),
    ("pixel_spacing_note", "what else the file says of the spacing (calibrations that disagree), or null"),
    ("frame_size_px", "[width, height] of the PNG"),
    ("pixels_blanked", "which pixels were set to 0 (burned-in text): 'outside the ultrasound region (DICOM US "
                       "regions)' or 'outside the probe's field of view'; null when the pixels are as recorded"),
    ("burned_in_annotation", "'NO' when everything outside the image was blanked, else 'YES' (the scanner's text "
                             "may be in the pixels), as DICOM's Burned In Annotation (0028,0301) says it"),
    ("ac_mm", "abdominal circumference measured on the model's mask, when there is one and the spacing is known"),
    ("ac_warning", "why that AC cannot be a fetus's (outside 50-450 mm, or a sliver of an ellipse), or null"),
    ("calipers", "measurements on the frame: ellipse (AC) and distance calipers, in px and mm, and who placed them"),
    ("app_version", "fetal-iqa version"),
    ("exported_at", "UTC time of the export"),
)


@dataclass(frozen=True)
class ModelInfo:
    """What an export records of the model that scored. The threshold a frame is judged by is the
    user's (`ScoredCase.threshold`); `own_threshold` is only where it starts."""

    name: str
    identity: str
    own_threshold: float  # the model's own: its metadata's, else its kind's default
    is_demo: bool = False
    task: str = "classification"

    @classmethod
    def of(cls, model) -> "ModelInfo":
        """From a `LoadedModel`, with its own threshold."""
        return cls(model.name, model.identity, model.threshold, model.is_demo, model.task)

    @property
    def is_segmentation(self) -> bool:
        return self.task == "segmentation"


def sidecar(case: Case, frame: int, score: float | None, model: ModelInfo, threshold: float,
            ac_mm: float | None = None, calipers: list | None = None, source_name_only: bool = False,
            blanked: str | None = None) -> dict:
    """`source_name_only`: name the sweep file without its folders, which may name the patient;
    `blanked`: what was blanked of the pixels (`ImageArea.blanked`), None for nothing."""
    sweep = case.layout.sweep_of(frame)
    good = judged(score, threshold)
    values = {
        "source": case.source.name if source_name_only else _absolute(case.source),
        "source_sha256": case.content_hash,
        "frame": int(frame),
        "sweep": sweep.number,
        "frame_in_sweep": int(frame - sweep.start),
        "score": None if good is None or score is None else round(float(score), 6),
        "threshold": threshold,
        "good": good,
        "model": model.name,
        "model_identity": model.identity,
        "demo_model": model.is_demo,
        **case.spacing.as_record(),
        "frame_size_px": list(case.frame_size),
        "pixels_blanked": blanked,
        "burned_in_annotation": burned_in_annotation(blanked is not None),
        "ac_mm": None if ac_mm is None else round(ac_mm, 2),
        "ac_warning": implausible_ac(ac_mm),
        "calipers": [caliper.record() for caliper in calipers or ()],
        "app_version": __version__,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    assert list(values) == [name for name, _ in SIDECAR_FIELDS]
    return values


def _absolute(path: Path) -> str:
    """The resolved absolute path of a file; a name that is no file (an in-memory sweep) as it is."""
    return str(path.resolve()) if path.exists() else str(path)


def overlay_image(frame: np.ndarray, caption: str, mask: np.ndarray | None = None, ellipse=None) -> np.ndarray:
    """A colour copy of a frame with its caption, the mask outline (cyan) and the fitted ellipse (yellow)."""
    image = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if mask is not None and mask.any():
        contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, (255, 255, 0), 2)
    if ellipse is not None:
        centre = tuple(int(round(v)) for v in ellipse.center)
        axes = tuple(int(round(v)) for v in ellipse.axes)
        cv2.ellipse(image, centre, axes, ellipse.angle_deg, 0, 360, (0, 220, 255), 2)
    for row, line in enumerate(caption.splitlines()):
        cv2.putText(image, line, (10, 24 + 22 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return image


BELOW_THRESHOLD_MARK = "_below-threshold"
FRAME_SUFFIXES = (".png", ".json")  # an exported frame's files: the PNG and its sidecar
OVERLAY_SUFFIX = "_overlay.png"
HEAT_MAP_SUFFIX = "_heatmap.png"
NOT_A_MEASUREMENT = "an explanation aid, not a measurement"


def heat_map_caption(heat) -> str:
    """What a heat map picture says of itself: its method, and what it is not."""
    return f"Heat map, {heat.description} ({NOT_A_MEASUREMENT})"


def heat_map_image(pixels: np.ndarray, heat) -> np.ndarray:
    """A colour copy (BGR) of a frame's pixels with its heat map (engine/explain.py's `HeatMap`) over
    them as the window shows it, and the caption `heat_map_caption` at the top."""
    colours = heat.colours.astype(np.float32)
    alpha = colours[..., 3:] / 255
    grey = pixels.astype(np.float32)[..., None]
    image = np.round(grey * (1 - alpha) + colours[..., 2::-1] * alpha).astype(np.uint8)
    method, note = heat_map_caption(heat).split(" (", 1)
    for row, line in enumerate((method, "(" + note)):
        cv2.putText(image, line, (10, 24 + 22 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return image


def frame_basename(case: Case, frame: int, good: bool = True) -> str:
    """`<case>_frame012_sweep1`; a frame that is not good says so in its name, whatever folder it lands in."""
    sweep = case.layout.sweep_of(frame)
    return f"{safe_name(case.case_id)}_frame{frame:03d}_sweep{sweep.number}" + ("" if good else BELOW_THRESHOLD_MARK)


def judged(score: float | None, threshold: float) -> bool | None:
    """Whether a frame's score is good; None when there is no score to judge."""
    return None if score is None or math.isnan(score) else is_good(score, threshold)


def png_bytes(image: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> bytes:
    """Lossless PNG; with a spacing, its pHYs chunk says how large a pixel is (pixels per metre), so
    that viewers which read it show, and measure, the frame at its true size."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ExportRefused("the frame could not be encoded as PNG")
    data = encoded.tobytes()
    if spacing_mm is None:
        return data
    body = b"pHYs" + struct.pack(">IIB", *(round(1000 / mm) for mm in spacing_mm), 1)  # unit 1: the metre
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    end_of_header = 8 + 8 + 13 + 4  # signature, IHDR's length and type, its 13 bytes, its CRC
    return data[:end_of_header] + chunk + data[end_of_header:]


def export_frame(case: Case, frame: int, score: float | None, model: ModelInfo, threshold: float,
                 out_dir: str | Path, overlay: np.ndarray | None = None, ac_mm: float | None = None, overwrite: bool = False,
                 rename: bool = False, calipers: list | None = None, source_name_only: bool = False,
                 area: ImageArea | None = None, heat_map: np.ndarray | None = None) -> list[Path]:
    """PNG of the original pixels + JSON sidecar (+ optional overlay PNG, + optional heat map PNG,
    `heat_map_image`'s). Returns the written paths.
    With an `area`, every pixel outside it is 0 in the PNG (the overlay is the caller's: made from
    `frame_pixels`), and the sidecar says so.

    The files are written together: all of them or none (a PNG never lacks its sidecar), and a
    refused export writes nothing. An existing name is refused, unless `overwrite`, or `rename`
    (then the files get the first free name of `<name>-2`, `<name>-3`, ...).
    """
    if case.layout.padding[frame]:
        raise ExportRefused(f"frame {frame} is padding, not an image")
    out_dir = Path(out_dir)
    base = frame_basename(case, frame, good=bool(judged(score, threshold)))
    extras = [(suffix, image) for suffix, image in ((OVERLAY_SUFFIX, overlay), (HEAT_MAP_SUFFIX, heat_map))
              if image is not None]
    suffixes = list(FRAME_SUFFIXES) + [suffix for suffix, _ in extras]
    if rename and not overwrite:
        taken = lambda name: any((out_dir / f"{name}{suffix}").exists() for suffix in suffixes)  # noqa: E731
        base = next(name for name in [base] + [f"{base}-{n}" for n in range(2, 10_000)] if not taken(name))
    document = json.dumps(sidecar(case, frame, score, model, threshold, ac_mm, calipers, source_name_only,
                                  area.blanked if area else None), indent=2).encode()
    pixels = frame_pixels(case, frame, area)
    writers: list[Writer] = [lambda f: f.write(png_bytes(pixels, case.spacing_mm)), lambda f: f.write(document)]
    for _, image in extras:
        writers.append(functools.partial(_write_png, image=image, spacing=case.spacing_mm))
    return write_together([(out_dir / f"{base}{suffix}", write) for suffix, write in zip(suffixes, writers)], overwrite)


def frame_pixels(case: Case, frame: int, area: ImageArea | None = None) -> np.ndarray:
    """A frame's pixels as every export shows them: as recorded, or blanked outside `area`."""
    return case.frames[frame] if area is None else area.apply(case.frames[frame])


def score_rows(case: Case, scores: np.ndarray, threshold: float, mask_area_px: np.ndarray | None = None):
    """The CSV rows, one per frame: frame, sweep, padding, score, good[, mask_area_px]."""
    for frame in range(case.n_frames):
        padding = bool(case.layout.padding[frame])
        score = scores[frame]
        scored = not padding and not np.isnan(score)
        row = [frame, case.layout.sweep_of(frame).number, int(padding),
               f"{score:.6f}" if scored else "", int(scored and is_good(score, threshold))]
        if mask_area_px is not None:
            row.append("" if not scored else int(mask_area_px[frame]))
        yield row


def scores_csv(case: Case, scores: np.ndarray, threshold: float, mask_area_px: np.ndarray | None = None) -> bytes:
    """The scores CSV's bytes: one row a frame (`score_rows`)."""
    columns = SCORE_COLUMNS + (("mask_area_px",) if mask_area_px is not None else ())
    return csv_bytes(columns, score_rows(case, scores, threshold, mask_area_px))


def write_scores_csv(path: str | Path, case: Case, scores: np.ndarray, threshold: float,
                     mask_area_px: np.ndarray | None = None, overwrite: bool = False) -> Path:
    data = scores_csv(case, scores, threshold, mask_area_px)
    return atomic_write(path, lambda f: f.write(data), overwrite)


def write_challenge_output(out_dir: str | Path, case_id: str, frame: int, mask: np.ndarray | None,
                           shape: tuple[int, int, int], spacing_mm: tuple[float, float] | None, overwrite: bool = False) -> Path:
    """The challenge's per-case output: chosen frame (0-based, -1 for none) and a 0/1 mask volume
    of the case's shape, zero except on the chosen frame."""
    case_dir = Path(out_dir) / safe_name(case_id)
    volume = np.zeros(shape, np.uint8)
    if frame >= 0 and mask is not None:
        volume[frame] = (mask > 0).astype(np.uint8)
    image = sitk.GetImageFromArray(volume)
    sx, sy = spacing_mm or (1.0, 1.0)  # ITK's "no calibration", as it reads back
    image.SetSpacing((sx, sy, 1.0))
    write_image(image, case_dir / CHALLENGE_MASK, overwrite)
    atomic_write(case_dir / CHALLENGE_FRAME_JSON, lambda f: f.write(json.dumps(int(frame)).encode()), overwrite)
    return case_dir


def _write_png(file, image, spacing) -> None:
    file.write(png_bytes(image, spacing))
