"""Abdominal circumference from a binary abdomen mask, as the ACOUSLIC-AI challenge measures it.

Fit an ellipse to the mask's contour (OpenCV), after dropping the contour points that lie on the
border of the probe's field of view (there the fan cuts the mask, not the abdomen's edge);
circumference by Ramanujan's first approximation on the semi-axes, times the pixel spacing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .acouslic import DEFAULT_SPACING_MM, load_fov_mask

MIN_CONTOUR_POINTS = 5  # OpenCV's fitEllipse needs more than five points
_PAD = 200  # as the challenge's evaluator: room for ellipses that extend past the frame


class MeasurementError(ValueError):
    """A mask without a usable abdomen contour."""


@dataclass(frozen=True)
class Ellipse:
    center: tuple[float, float]  # (x, y) in pixels
    axes: tuple[float, float]  # semi-axes in pixels: along the rotated x axis, then y
    angle_deg: float  # clockwise rotation in image coordinates (OpenCV's convention)

    @property
    def semi_axes(self) -> tuple[float, float]:
        """(major, minor) semi-axes in pixels."""
        return max(self.axes), min(self.axes)

    @property
    def circumference_px(self) -> float:
        return ramanujan_circumference(*self.axes)


@dataclass(frozen=True)
class Measurement:
    ellipse: Ellipse
    ac_mm: float
    fit_residual: float  # mean |algebraic distance| of the contour points to the ellipse (0 = perfect)
    contour_points: int
    dropped_border_points: int

    @property
    def fit_quality(self) -> str:
        return "good" if self.fit_residual < 0.05 else "fair" if self.fit_residual < 0.15 else "poor"


def ramanujan_circumference(a: float, b: float) -> float:
    """Ramanujan's first approximation of an ellipse's perimeter from its semi-axes."""
    return math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))


def measure_abdomen(mask: np.ndarray, spacing_mm: float = DEFAULT_SPACING_MM, fov_mask: np.ndarray | None = None) -> Measurement:
    """Fit the abdomen ellipse of a 2-D mask and return its circumference in mm.

    The steps are the challenge evaluator's: pad by 200 px (an ellipse may extend past the frame),
    cut the mask to the field of view, draw the mask's contours and the fan's border one pixel
    wide, keep the mask-contour pixels not on the fan's border, take the largest contour of
    those, fit an ellipse. `fov_mask` defaults to the ACOUSLIC-AI probe's when the shapes match,
    else the whole frame.
    """
    binary = np.asarray(mask) > 0
    if binary.ndim != 2:
        raise MeasurementError(f"a mask must be 2-D, this one has shape {binary.shape}")
    if not binary.any():
        raise MeasurementError("the mask is empty: no abdomen to measure")
    if fov_mask is None:
        fov_mask = load_fov_mask() if binary.shape == load_fov_mask().shape else np.ones(binary.shape, np.uint8)
    fov = np.pad((np.asarray(fov_mask) > 0).astype(np.uint8) * 255, _PAD)
    cut = np.pad(binary.astype(np.uint8) * 255, _PAD) & fov
    fov_border = _contour_lines(fov)
    mask_border = _contour_lines(cut)
    kept = ((mask_border > 0) & (fov_border == 0)).astype(np.uint8) * 255
    contours, _ = cv2.findContours(kept, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise MeasurementError("the abdomen lies entirely on the edge of the field of view")
    contour = max(contours, key=cv2.contourArea)
    if len(contour) <= MIN_CONTOUR_POINTS:
        raise MeasurementError("the abdomen contour is too small to fit an ellipse")
    (cx, cy), (width, height), angle = cv2.fitEllipse(contour)
    if not (np.isfinite(width) and np.isfinite(height)) or min(width, height) <= 0:
        raise MeasurementError("no ellipse fits the contour")
    a, b = width / 2, height / 2
    points = contour[:, 0, :].astype(np.float64)
    residual = _algebraic_residual(points, cx, cy, a, b, angle)
    ellipse = Ellipse((cx - _PAD, cy - _PAD), (a, b), angle)
    dropped = int(((mask_border > 0) & (fov_border > 0)).sum())
    return Measurement(ellipse, ramanujan_circumference(a, b) * spacing_mm, residual, len(contour), dropped)


def _contour_lines(binary: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    lines = np.zeros_like(binary)
    cv2.drawContours(lines, contours, -1, 255, 1)
    return lines


def _algebraic_residual(points: np.ndarray, cx: float, cy: float, ax: float, ay: float, angle_deg: float) -> float:
    theta = math.radians(angle_deg)
    dx, dy = points[:, 0] - cx, points[:, 1] - cy
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    rho = np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
    return float(np.mean(np.abs(rho - 1)))
