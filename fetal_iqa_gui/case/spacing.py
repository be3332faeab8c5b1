"""A pixel's size in mm, with where it came from: what every measurement in mm rests on.

Ultrasound machines calibrate their DICOM in several ways, and most write no Pixel Spacing at all:
- Pixel Spacing (0028,0030), in the patient, row then column (y, x), in mm; or the same in the
  shared functional groups of an enhanced multi-frame file;
- the Sequence of Ultrasound Regions (0018,6011): each region of the screen (the image, a Doppler
  strip, a colour bar) with its own Physical Delta X/Y in its own Physical Units (3 = cm);
- Imager Pixel Spacing (0018,1164), row then column, in mm.
They are read in that order; one that disagrees with the one used is named in a note. Formats
read by ITK give ITK's spacing, except exactly 1 x 1: what ITK reports when a file states none
(a PNG, an uncalibrated DICOM), and 1 mm per pixel would make a 744-pixel frame 74 cm deep. A
spacing that nothing states is unknown: never a default presented as a measurement.

The regions also say where the image lies on the screen (`region_boxes`): what an export keeps
when it blanks the text a scanner burns in around the image (review/privacy.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CM = 3  # Physical Units code of centimetres (PS3.3 C.8.5.5.1.15)
_TISSUE = 1  # Region Data Type: tissue (the B-mode image)
_AREA = 1  # Region Spatial Format: 2-D
_UNITS = {0: "none", 1: "percent", 2: "dB", 3: "cm", 4: "seconds", 5: "hertz", 6: "dB/s", 7: "cm/s", 8: "cm²",
          9: "cm²/s", 10: "cm³", 11: "cm³/s", 12: "degrees"}
_AGREE = 0.01  # two calibrations within 1 % of each other agree


@dataclass(frozen=True)
class Spacing:
    """(x, y) mm per pixel, or None when nothing states it; `source` says where it came from in
    words a user reads ("Pixel Spacing (0028,0030)", "entered by the user", "unknown: ...")."""

    mm: tuple[float, float] | None
    source: str
    note: str | None = None  # what else the file says that disagrees, or which region was chosen

    @property
    def known(self) -> bool:
        return self.mm is not None

    def describe(self) -> str:
        """One line: '0.280 x 0.280 mm (ultrasound region 1 of 2)', or 'unknown (…why…)'."""
        if self.mm is None:
            return f"unknown ({self.source})"
        text = f"{self.mm[0]:.3f} x {self.mm[1]:.3f} mm ({self.source})"
        return f"{text}; {self.note}" if self.note else text

    def as_record(self) -> dict:
        """For sidecars and reports: the values (null when unknown) and their source."""
        return {"pixel_spacing_mm": None if self.mm is None else list(self.mm), "pixel_spacing_source": self.source,
                "pixel_spacing_note": self.note}


def _positive(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


def given(mm: tuple[float, float], source: str) -> Spacing:
    return Spacing((float(mm[0]), float(mm[1])), source)


def entered_by_user(mm: tuple[float, float]) -> Spacing:
    return given(mm, "entered by the user")


def from_itk(spacing: tuple[float, ...], what: str) -> Spacing:
    """ITK's in-plane spacing of a non-DICOM file (`what`: its format, for the source's words)."""
    sx = float(spacing[0])
    sy = float(spacing[1]) if len(spacing) > 1 else sx
    if (sx, sy) == (1.0, 1.0) or not _positive(sx, sy):
        return Spacing(None, f"the {what} states no calibration")
    return Spacing((sx, sy), f"the {what}'s header")


def dicom_header_spacing(header) -> Spacing:
    """The spacing a pydicom dataset states, by the order in this module's docstring."""
    found = [spacing for spacing in (_pixel_spacing(header), _region_spacing(header), _imager_spacing(header))
             if spacing is not None]
    if not found:
        return Spacing(None, "the DICOM file carries no calibration (no Pixel Spacing, no calibrated "
                             "ultrasound region, no Imager Pixel Spacing)")
    known = [(spacing, spacing.mm) for spacing in found if spacing.mm is not None]
    if not known:
        return found[0]  # regions that are not in cm: say so
    chosen, chosen_mm = known[0]
    disagree = [(s, mm) for s, mm in known[1:] if not _agree(mm, chosen_mm)]
    notes = [chosen.note] if chosen.note else []
    notes += [f"{s.source} says {mm[0]:.3f} x {mm[1]:.3f} mm" for s, mm in disagree]
    return Spacing(chosen_mm, chosen.source, "; ".join(notes) or None)


def _pair(value) -> tuple[float, float] | None:
    """A DICOM (row, column) pair of mm as (x, y); None unless two positive finite numbers."""
    try:
        row, column = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (column, row) if _positive(row, column) else None


def _pixel_spacing(header) -> Spacing | None:
    if "PixelSpacing" in header and (mm := _pair(header.PixelSpacing)):
        return given(mm, "Pixel Spacing (0028,0030)")
    for group in header.get("SharedFunctionalGroupsSequence", []) or []:
        for measures in group.get("PixelMeasuresSequence", []) or []:
            if "PixelSpacing" in measures and (mm := _pair(measures.PixelSpacing)):
                return given(mm, "Pixel Spacing of the shared functional groups")
    return None


def _imager_spacing(header) -> Spacing | None:
    if "ImagerPixelSpacing" in header and (mm := _pair(header.ImagerPixelSpacing)):
        return given(mm, "Imager Pixel Spacing (0018,1164)")
    return None


def _region_spacing(header) -> Spacing | None:
    """The region that holds the B-mode image: 2-D, tissue before other data, in cm, the largest."""
    regions = list(header.get("SequenceOfUltrasoundRegions", []) or [])
    if not regions:
        return None
    usable = []
    for number, region in enumerate(regions, 1):
        units = (region.get("PhysicalUnitsXDirection"), region.get("PhysicalUnitsYDirection"))
        dx, dy = region.get("PhysicalDeltaX"), region.get("PhysicalDeltaY")
        if region.get("RegionSpatialFormat") != _AREA or units != (CM, CM) or dx is None or dy is None:
            continue
        dx, dy = abs(float(dx)) * 10, abs(float(dy)) * 10  # cm -> mm; a negative delta only flips the axis
        if not _positive(dx, dy):
            continue
        box = _box(region)
        area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1) if box else 0
        usable.append((region.get("RegionDataType") == _TISSUE, area, number, (dx, dy), box))
    if not usable:
        unit_names = sorted({_UNITS.get(r.get("PhysicalUnitsXDirection"), "unknown units") for r in regions})
        return Spacing(None, f"the DICOM file's {len(regions)} ultrasound region(s) are not calibrated in cm "
                             f"({', '.join(unit_names)})")
    usable.sort(key=lambda r: (r[0], r[1]), reverse=True)
    _, _, number, mm, box = usable[0]
    where = f"ultrasound region {number} of {len(regions)}" if len(regions) > 1 else "ultrasound region"
    others = [r for r in usable[1:] if not _agree(r[3], mm)]
    note = None
    if others:
        note = (f"{len(others)} other region(s) have another calibration (region "
                f"{', '.join(str(r[2]) for r in others)}); measure inside region {number}"
                + (f" (x {box[0]}-{box[2]}, y {box[1]}-{box[3]})" if box else ""))
    return Spacing(mm, f"{where} (0018,6011)", note)


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, corners included, as DICOM states a region


def region_boxes(header) -> tuple[Box, ...]:
    """Where on the screen each ultrasound region lies, calibrated or not: the image the scanner
    declares, as opposed to the text it burns in around it (an export may blank outside these)."""
    return tuple(box for region in header.get("SequenceOfUltrasoundRegions", []) or [] if (box := _box(region)))


def _box(region) -> Box | None:
    """A region's corners; None unless it states all four, the first above and left of the second."""
    corners = [region.get(name) for name in ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1",
                                             "RegionLocationMaxY1")]
    if None in corners:
        return None
    x0, y0, x1, y1 = (int(value) for value in corners)
    return (x0, y0, x1, y1) if x0 <= x1 and y0 <= y1 else None


def _agree(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(math.isclose(x, y, rel_tol=_AGREE) for x, y in zip(a, b))
