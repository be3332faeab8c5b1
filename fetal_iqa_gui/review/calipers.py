"""Calipers: what a sonographer measures on a frozen frame, as an ultrasound machine does.

An ellipse caliper gives the abdominal circumference (Ramanujan's formula on the semi-axes in
mm, as the challenge measures a mask's fitted ellipse); a distance caliper the length between two
points. Both are kept in pixels with the pixel spacing they were measured with, and say who
placed them: the model (its mask's fitted ellipse, proposed) or the user (placed or adjusted).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

import numpy as np


from ..case.measure import Ellipse, MeasurementError, circumference_mm, implausible_ac

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


def ellipse_diameters_mm(ellipse: Ellipse, spacing_mm: tuple[float, float]) -> tuple[float, float]:
    """The (major, minor) diameters in mm: the axes of the ellipse in mm, which with non-square
    pixels are not the pixel ellipse's axes times a spacing (a tilted ellipse shears)."""
    sx, sy = check_spacing(spacing_mm)
    theta = math.radians(ellipse.angle_deg)
    to_mm = np.array([[sx * math.cos(theta), -sx * math.sin(theta)], [sy * math.sin(theta), sy * math.cos(theta)]])
    major, minor = np.linalg.svd(to_mm @ np.diag(ellipse.axes), compute_uv=False)
    return 2 * float(major), 2 * float(minor)


@dataclass(frozen=True)
class EllipseCaliper:
    NAME: ClassVar[str] = "AC"  # what its label says: AC 1, AC 2
    ellipse: Ellipse  # in the frame's pixels
    spacing_mm: tuple[float, float]
    by: str = "user"  # "user" (placed or adjusted) or "model" (the mask's fitted ellipse, accepted as it is)
    model_ac_mm: float | None = None  # what the model's own ellipse gave, when there was one

    @property
    def ac_mm(self) -> float:
        return ellipse_circumference_mm(self.ellipse, self.spacing_mm)

    @property
    def diameters_mm(self) -> tuple[float, float]:
        return ellipse_diameters_mm(self.ellipse, self.spacing_mm)

    def describe(self) -> str:
        text = f"AC {self.ac_mm:.1f} mm ({'model' if self.by == 'model' else 'caliper'})"
        return f"{text} ⚠ implausible: {self.warning}" if self.warning else text

    @property
    def warning(self) -> str | None:
        """Why this AC cannot be a fetus's (a wrong spacing, a sliver of an ellipse), or None."""
        return implausible_ac(self.ac_mm, self.diameters_mm)

    def value_text(self) -> str:
        text = f"{self.ac_mm:.1f} mm (axes {self.diameters_mm[0]:.1f} × {self.diameters_mm[1]:.1f} mm)"
        return f"{text} ⚠ implausible" if self.warning else text

    def distance_px(self, point: tuple[float, float]) -> float:
        """How far a point lies from the outline, in pixels (inside or out)."""
        return float(np.hypot(*(_outline(self.ellipse) - np.asarray(point, float)[:, None])).min())

    def contains(self, point: tuple[float, float]) -> bool:
        (cx, cy), (a, b) = self.ellipse.center, self.ellipse.axes
        theta = math.radians(self.ellipse.angle_deg)
        dx, dy = point[0] - cx, point[1] - cy
        u, v = dx * math.cos(theta) + dy * math.sin(theta), -dx * math.sin(theta) + dy * math.cos(theta)
        return (u / a) ** 2 + (v / b) ** 2 <= 1 if a > 0 and b > 0 else False

    def record(self) -> dict:
        """What the sidecar and the report keep."""
        (cx, cy), (a, b) = self.ellipse.center, self.ellipse.axes
        sx, sy = self.spacing_mm
        return {"kind": "ellipse", "by": self.by, "ac_mm": round(self.ac_mm, 2), "ac_warning": self.warning,
                "model_ac_mm": None if self.model_ac_mm is None else round(self.model_ac_mm, 2),
                "center_px": [round(cx, 2), round(cy, 2)], "semi_axes_px": [round(a, 2), round(b, 2)],
                "angle_deg": round(self.ellipse.angle_deg, 2),
                "semi_axes_mm": [round(a * sx, 2), round(b * sy, 2)] if math.isclose(sx, sy) else None,
                "pixel_spacing_mm": [sx, sy]}


@dataclass(frozen=True)
class DistanceCaliper:
    NAME: ClassVar[str] = "distance"
    start: tuple[float, float]  # (x, y) in the frame's pixels
    end: tuple[float, float]
    spacing_mm: tuple[float, float]
    by: str = "user"

    @property
    def length_mm(self) -> float:
        return distance_mm(self.start, self.end, self.spacing_mm)

    def describe(self) -> str:
        return f"distance {self.length_mm:.1f} mm"

    def value_text(self) -> str:
        return f"{self.length_mm:.1f} mm"

    def distance_px(self, point: tuple[float, float]) -> float:
        start, end, p = (np.asarray(v, float) for v in (self.start, self.end, point))
        span = end - start
        along = np.clip(np.dot(p - start, span) / max(float(np.dot(span, span)), 1e-9), 0, 1)
        return float(np.hypot(*(p - (start + along * span))))

    def contains(self, point: tuple[float, float]) -> bool:
        return False

    def record(self) -> dict:
        return {"kind": "distance", "by": self.by, "length_mm": round(self.length_mm, 2),
                "start_px": [round(v, 2) for v in self.start], "end_px": [round(v, 2) for v in self.end],
                "pixel_spacing_mm": list(self.spacing_mm)}


Caliper: TypeAlias = "EllipseCaliper | DistanceCaliper"  # what a frame keeps


def labels_of(calipers) -> list[str]:
    """Each measurement's label, numbered per kind in the order kept: AC 1, AC 2, distance 1."""
    counts: Counter = Counter()
    labels = []
    for caliper in calipers:
        counts[caliper.NAME] += 1
        labels.append(f"{caliper.NAME} {counts[caliper.NAME]}")
    return labels


def same_shape(a, b, tolerance_px: float = 0.05) -> bool:
    """Whether two calipers lie in the same place: keeping the second would only repeat the first."""
    if type(a) is not type(b):
        return False
    if isinstance(a, EllipseCaliper):
        first, second = a.ellipse, b.ellipse
        values = zip((*first.center, *first.axes, first.angle_deg), (*second.center, *second.axes, second.angle_deg))
    else:
        values = zip((*a.start, *a.end), (*b.start, *b.end))
    return all(math.isclose(x, y, abs_tol=tolerance_px) for x, y in values)


def caliper_at(calipers, point: tuple[float, float], tolerance_px: float) -> int | None:
    """The index of the caliper a click at `point` means: the one whose line lies nearest, within
    `tolerance_px`; a click inside an ellipse, away from every line, means the ellipse."""
    hits = [(caliper.distance_px(point), index) for index, caliper in enumerate(calipers)]
    near = [hit for hit in hits if hit[0] <= tolerance_px or calipers[hit[1]].contains(point)]
    return min(near)[1] if near else None


def _outline(ellipse: Ellipse, points: int = 360) -> np.ndarray:
    (cx, cy), (a, b) = ellipse.center, ellipse.axes
    t = np.linspace(0, 2 * math.pi, points, endpoint=False)
    theta = math.radians(ellipse.angle_deg)
    return np.array([cx + a * np.cos(t) * math.cos(theta) - b * np.sin(t) * math.sin(theta),
                     cy + a * np.cos(t) * math.sin(theta) + b * np.sin(t) * math.cos(theta)])
