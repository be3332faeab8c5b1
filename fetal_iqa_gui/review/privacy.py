"""Blanking what a scanner burns into its frames around the image, before the pixels leave the app.

Real scanners write the institution, the date and the patient's identifiers as pixels beside the
image (seen on GE and ALOKA files). An export asked to blank them keeps only the image region:
- the DICOM's Sequence of Ultrasound Regions (0018,6011), when the file has one: every pixel inside
  a region the scanner declares is kept (case/spacing.py reads where they lie);
- else the ACOUSLIC-AI probe's field of view, which fits only frames of its size (744 x 562);
- else nothing tells the image from the text, and the export is refused: never frames that are
  said to be blanked and are not.
What was done is recorded (`ImageArea.blanked`, the sidecar's "pixels_blanked"), and so is whether
burned-in text may remain (`burned_in_annotation`), in the words DICOM's Burned In Annotation
(0028,0301) takes, for every export that writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base.errors import ExportRefused, choice
from ..case.acouslic import load_fov_mask
from ..case.case import Case

BY_US_REGIONS = "outside the ultrasound region (DICOM US regions)"
BY_PROBE_FOV = "outside the probe's field of view"


class BlankingRefused(ExportRefused):
    """Blanking was asked for a case whose image region nothing states: nothing is exported."""

    exit_code = 2  # the option and the input do not go together, as a bad input


@dataclass(frozen=True)
class ImageArea:
    """The pixels of a frame that are the ultrasound image; every other pixel is blanked to 0."""

    keep: np.ndarray  # (height, width) bool
    blanked: str  # what was blanked, in the sidecar's words (BY_US_REGIONS, BY_PROBE_FOV)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """A copy of a (height, width[, channels]) frame, zero outside the image."""
        keep = self.keep if frame.ndim == 2 else self.keep[..., np.newaxis]
        return np.where(keep, frame, 0).astype(frame.dtype)


def image_area(case: Case) -> ImageArea:
    """Where the image of `case`'s frames lies, by the order in this module's docstring; raises
    `BlankingRefused` when nothing states it."""
    height, width = case.frames.shape[1:3]
    keep = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in case.us_regions:
        keep[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True  # a region beyond the frame keeps what lies on it
    if keep.any():
        return ImageArea(keep, BY_US_REGIONS)
    fov = load_fov_mask()
    if fov.shape == (height, width):
        return ImageArea(fov > 0, BY_PROBE_FOV)
    regions = ("its DICOM ultrasound regions lie outside the frame" if case.us_regions
               else "the file declares no ultrasound regions (DICOM Sequence of Ultrasound Regions)")
    raise BlankingRefused(
        f"the text around the image cannot be blanked: the frames are {width} x {height} px, {regions}, and "
        f"the probe's field of view fits only {fov.shape[1]} x {fov.shape[0]} px frames",
        f"Export the recording from the scanner as DICOM with its ultrasound regions, or turn off "
        f"{choice('blank_outside_image')} to export the frames as recorded (burned-in text included).")


def burned_in_annotation(blanked: bool) -> str:
    """DICOM's Burned In Annotation (0028,0301) for exported pixels: "NO" only when everything outside
    the image was blanked; otherwise the scanner's text may be there."""
    return "NO" if blanked else "YES"
