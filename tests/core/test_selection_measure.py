"""Selection of frames, and the AC measurement on analytic ellipses and the fan's edge."""

import math

import cv2
import numpy as np
import pytest

from fetal_iqa_gui.measure import MeasurementError, measure_abdomen, ramanujan_circumference
from fetal_iqa_gui.acouslic import load_fov_mask
from fetal_iqa_gui.selection import best_frame, good_runs, next_good, smoothed, top_frames
from fetal_iqa_gui.sweep import SweepLayout


def ellipse_mask(shape, centre, axes, angle_deg):
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (centre, axes, angle_deg), 1, -1)
    return mask


@pytest.mark.parametrize("axes,angle", [((240, 180), 0), ((300, 200), 30), ((200, 190), 75)])
def test_ac_of_analytic_ellipses_within_one_percent(axes, angle):
    mask = ellipse_mask((562, 744), (372, 300), axes, angle)
    result = measure_abdomen(mask, 0.28)
    truth = ramanujan_circumference(axes[0] / 2, axes[1] / 2) * 0.28
    assert result.ac_mm == pytest.approx(truth, rel=0.01)
    assert result.fit_quality == "good"


def test_ellipse_cut_by_the_fan_is_fitted_from_its_inner_contour():
    fov = load_fov_mask()
    axes = (300, 220)
    mask = ellipse_mask(fov.shape, (372, 500), axes, 0) & fov  # the fan cuts the bottom off
    result = measure_abdomen(mask, 0.28)
    assert result.dropped_border_points > 0
    assert result.ac_mm == pytest.approx(ramanujan_circumference(150, 110) * 0.28, rel=0.03)


def test_empty_mask_has_no_contour():
    with pytest.raises(MeasurementError, match="empty"):
        measure_abdomen(np.zeros((50, 50), np.uint8))


def test_top_frames_counts_a_run_once_per_sweep():
    scores = np.zeros(40, np.float32)
    scores[5:9] = [0.7, 0.9, 0.8, 0.6]
    scores[30] = 0.5
    layout = SweepLayout.equal_slots(np.zeros(40, bool), 1)
    picks = top_frames(scores, layout, k=3)
    assert [p.frame for p in picks][:2] == [6, 30]


def test_runs_and_next_good_frame():
    scores = np.array([0.1, 0.8, 0.9, 0.2, np.nan, 0.7, 0.1], np.float32)
    assert good_runs(scores, 0.5) == [(1, 3), (5, 6)]
    assert next_good(scores, 0.5, 2, 1) == 5
    assert next_good(scores, 0.5, 5, -1) == 2
    assert next_good(scores, 0.5, 5, 1) is None


def test_smoothing_ignores_unscored_frames_and_keeps_them_unscored():
    scores = np.array([0.0, 1.0, np.nan, 1.0, 0.0], np.float32)
    out = smoothed(scores, 3)
    assert math.isnan(out[2])
    assert out[1] == pytest.approx(0.5)


def test_best_frame_skips_padding():
    scores = np.array([0.2, 0.4, np.nan, 0.3], np.float32)
    layout = SweepLayout.equal_slots(np.array([False, False, True, False]), 1)
    assert best_frame(scores, layout).frame == 1
