"""Calipers: AC of an ellipse and distances in mm, against analytic values; spacing refused when implausible."""

import json
import math

import numpy as np
import pytest

from fetal_iqa_gui.review.calipers import (DistanceCaliper, EllipseCaliper, caliper_at, check_spacing,
                                           ellipse_circumference_mm, labels_of, same_shape)
from fetal_iqa_gui.review.export import ModelInfo
from fetal_iqa_gui.case.measure import Ellipse, MeasurementError
from fetal_iqa_gui.review.scored_case import ScoredCase
from fetal_iqa_gui.case.case import Case


def exact_perimeter(a, b, points=200_000):
    t = np.linspace(0, 2 * math.pi, points + 1)
    return float(np.hypot(np.diff(a * np.cos(t)), np.diff(b * np.sin(t))).sum())


@pytest.mark.parametrize("a,b,angle", [(100, 100, 0), (120, 80, 0), (150, 60, 33), (90, 30, 90)])
def test_ellipse_ac_is_within_half_a_percent_of_the_true_perimeter(a, b, angle):
    ac = ellipse_circumference_mm(Ellipse((300, 250), (a, b), angle), (0.28, 0.28))
    assert ac == pytest.approx(exact_perimeter(a, b) * 0.28, rel=0.005)
    assert ac == pytest.approx(exact_perimeter(a, b) * 0.28, rel=2e-4)  # Ramanujan is far better than that


def test_non_square_pixels_measure_the_ellipse_in_mm():
    # a circle of 100 px radius on pixels 0.2 mm wide and 0.4 mm high is an ellipse of 20 x 40 mm semi-axes
    for angle in (0, 30, 90):  # a circle turns into the same ellipse whatever its "rotation"
        ac = ellipse_circumference_mm(Ellipse((0, 0), (100, 100), angle), (0.2, 0.4))
        assert ac == pytest.approx(exact_perimeter(20, 40), rel=1e-4)


def test_the_diameters_are_the_axes_in_mm_whatever_the_pixels():
    assert EllipseCaliper(Ellipse((0, 0), (120, 90), 25), (0.28, 0.28)).diameters_mm == pytest.approx((67.2, 50.4))
    assert EllipseCaliper(Ellipse((0, 0), (50, 100), 0), (0.2, 0.4)).diameters_mm == pytest.approx((80, 20))
    # a circle on pixels 0.2 mm wide and 0.4 mm high is 40 mm across and 80 mm high, however it is "turned"
    assert EllipseCaliper(Ellipse((0, 0), (100, 100), 30), (0.2, 0.4)).diameters_mm == pytest.approx((80, 40))


def test_labels_count_each_kind_in_the_order_kept():
    ellipse = EllipseCaliper(Ellipse((300, 250), (100, 80), 0), (0.28, 0.28))
    line = DistanceCaliper((0, 0), (30, 40), (0.28, 0.28))
    assert labels_of([ellipse, line, ellipse, line, line]) == ["AC 1", "distance 1", "AC 2", "distance 2", "distance 3"]
    assert "(axes 56.0 × 44.8 mm)" in ellipse.value_text() and line.value_text() == "14.0 mm"


def test_a_click_means_the_nearest_caliper_line_or_the_ellipse_it_falls_in():
    outer = EllipseCaliper(Ellipse((300, 250), (100, 80), 0), (0.28, 0.28))
    inner = EllipseCaliper(Ellipse((300, 250), (40, 30), 0), (0.28, 0.28))
    line = DistanceCaliper((260, 250), (340, 250), (0.28, 0.28))
    kept = [outer, inner, line]
    assert caliper_at(kept, (400, 252), tolerance_px=5) == 0  # on the outer ellipse's line
    assert caliper_at(kept, (300, 220), tolerance_px=5) == 1  # on the inner one's top
    assert caliper_at(kept, (300, 253), tolerance_px=5) == 2  # on the line, inside both ellipses
    assert caliper_at(kept, (300, 300), tolerance_px=5) == 0  # inside the outer ellipse only
    assert caliper_at(kept, (500, 500), tolerance_px=5) is None
    assert same_shape(outer, EllipseCaliper(Ellipse((300.01, 250), (100, 80), 0), (0.28, 0.28), "model"))
    assert not same_shape(outer, inner) and not same_shape(outer, line)


def test_distance_uses_each_axis_spacing():
    assert DistanceCaliper((0, 0), (30, 40), (0.28, 0.28)).length_mm == pytest.approx(50 * 0.28)
    assert DistanceCaliper((0, 0), (10, 10), (0.1, 0.3)).length_mm == pytest.approx(math.hypot(1, 3))


@pytest.mark.parametrize("spacing,why", [(None, "unknown"), ((0.0, 0.0), "implausible"), ((-0.28, 0.28), "implausible"),
                                         ((float("nan"), 0.28), "implausible"), ((1.0, 50.0), "implausible")])
def test_implausible_spacing_is_refused_with_a_reason(spacing, why):
    with pytest.raises(MeasurementError, match=why):
        check_spacing(spacing)


def test_kept_calipers_go_into_the_exported_sidecar(small_case, tmp_path):
    sweep = Case.from_array(small_case.frames, "/data/case-9.mha", sweeps=6)
    scored = ScoredCase(sweep, ModelInfo("tiny", "x", 0.5))
    frame = int(sweep.layout.image_frames()[3])
    scored.add(np.array([frame]), np.array([0.9], np.float32))
    ellipse = EllipseCaliper(Ellipse((372.0, 280.0), (120.0, 90.0), 15.0), sweep.spacing_mm, "user", 301.5)
    line = DistanceCaliper((100.0, 100.0), (160.0, 180.0), sweep.spacing_mm)
    scored.set_calipers(frame, [ellipse, line])
    report = scored.export([frame], tmp_path)
    document = json.loads(next(p for p in report.written if p.suffix == ".json").read_text())
    kept_ellipse, kept_line = document["calipers"]
    assert kept_ellipse["kind"] == "ellipse" and kept_ellipse["by"] == "user" and kept_ellipse["model_ac_mm"] == 301.5
    assert kept_ellipse["ac_mm"] == pytest.approx(exact_perimeter(120, 90) * 0.28, abs=0.02)
    assert kept_ellipse["center_px"] == [372.0, 280.0] and kept_ellipse["semi_axes_mm"] == [33.6, 25.2]
    assert kept_ellipse["pixel_spacing_mm"] == [0.28, 0.28]
    assert kept_line["length_mm"] == pytest.approx(100 * 0.28, abs=0.01)
    scored.set_calipers(frame, [])
    assert frame not in scored.calipers
