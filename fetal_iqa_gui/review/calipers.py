"""Calipers: what a sonographer measures on a frozen frame, as an ultrasound machine does.

An ellipse caliper gives the abdominal circumference (Ramanujan's formula on the semi-axes in
mm, as the challenge measures a mask's fitted ellipse); a distance caliper the length between two
points. Both are kept in pixels with the pixel spacing they were measured with, and say who
placed them: the model (its mask's fitted ellipse, proposed) or the user (placed or adjusted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


from ..case.measure import Ellipse, MeasurementError, circumference_mm

PLAUSIBLE_SPACING_MM = (0.01, 2.0)  # mm per pixel: ultrasound frames lie well inside this


def check_spacing(spacing_mm: tuple[float, float] | None) -> tuple[float, float]:
    """The (x, y) spacing if it can carry a measurement in mm; else a MeasurementError saying why."""
    if spacing_mm is None or len(spacing_mm) != 2:
        raise MeasurementError("the sweep's pixel spacing is unknown, so nothing can be measured in mm")
    low, high = PLAUSIBLE_SPACING_MM
    for value in spacing_mm:
        if not (math.isfinite(value) and low <= value <= high):
            raise MeasurementError(f"the sweep's pixel spacing ({value:g} mm) is implausible for ultrasound "
                                   f"(expected {low}-{high} mm per pixel); its file may lack a calibration")
    return float(spacing_mm[0]), float(spacing_mm[1])


def ellipse_circumference_mm(ellipse: Ellipse, spacing_mm: tuple[float, float]) -> float:
    """The ellipse's perimeter in mm (`measure.circumference_mm`), once the spacing is checked."""
    return circumference_mm(ellipse, check_spacing(spacing_mm))


def distance_mm(start: tuple[float, float], end: tuple[float, float], spacing_mm: tuple[float, float]) -> float:
    sx, sy = check_spacing(spacing_mm)
    return math.hypot((end[0] - start[0]) * sx, (end[1] - start[1]) * sy)


@dataclass(frozen=True)
class EllipseCaliper:
    ellipse: Ellipse  # in the frame's pixels
    spacing_mm: tuple[float, float]
    by: str = "user"  # "user" (placed or adjusted) or "model" (the mask's fitted ellipse, accepted as it is)
    model_ac_mm: float | None = None  # what the model's own ellipse gave, when there was one

    @property
    def ac_mm(self) -> float:
        return ellipse_circumference_mm(self.ellipse, self.spacing_mm)

    def describe(self) -> str:
        return f"AC {self.ac_mm:.1f} mm ({'model' if self.by == 'model' else 'caliper'})"

    def record(self) -> dict:
        """What the sidecar and the report keep."""
        (cx, cy), (a, b) = self.ellipse.center, self.ellipse.axes
        sx, sy = self.spacing_mm
        return {"kind": "ellipse", "by": self.by, "ac_mm": round(self.ac_mm, 2),
                "model_ac_mm": None if self.model_ac_mm is None else round(self.model_ac_mm, 2),
                "center_px": [round(cx, 2), round(cy, 2)], "semi_axes_px": [round(a, 2), round(b, 2)],
                "angle_deg": round(self.ellipse.angle_deg, 2),
                "semi_axes_mm": [round(a * sx, 2), round(b * sy, 2)] if math.isclose(sx, sy) else None,
                "pixel_spacing_mm": [sx, sy]}


@dataclass(frozen=True)
class DistanceCaliper:
    start: tuple[float, float]  # (x, y) in the frame's pixels
    end: tuple[float, float]
    spacing_mm: tuple[float, float]
    by: str = "user"

    @property
    def length_mm(self) -> float:
        return distance_mm(self.start, self.end, self.spacing_mm)

    def describe(self) -> str:
        return f"distance {self.length_mm:.1f} mm"

    def record(self) -> dict:
        return {"kind": "distance", "by": self.by, "length_mm": round(self.length_mm, 2),
                "start_px": [round(v, 2) for v in self.start], "end_px": [round(v, 2) for v in self.end],
                "pixel_spacing_mm": list(self.spacing_mm)}
