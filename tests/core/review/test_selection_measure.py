"""Selection of frames, and the AC measurement on analytic ellipses and the fan's edge."""

import math

import cv2
import numpy as np
import pytest

from fetal_iqa_gui.case.measure import MeasurementError, measure_abdomen, ramanujan_circumference
from fetal_iqa_gui.case.acouslic import load_fov_mask
from fetal_iqa_gui.review.selection import Pick, best_frame, good_runs, largest_area_frame, next_good, smoothed, top_frames
from fetal_iqa_gui.case.case import CaseLayout


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


def test_ramanujan_against_values_worked_by_hand():
    assert ramanujan_circumference(10, 10) == pytest.approx(2 * math.pi * 10)  # a circle, exactly
    assert ramanujan_circumference(10, 5) == pytest.approx(math.pi * (45 - math.sqrt(875)))  # 48.442


def test_the_fitted_ellipse_is_the_drawn_one_on_a_frame_of_any_size():
    mask = ellipse_mask((400, 400), (200, 180), (160, 100), 20)  # not the probe's frame: the whole frame is the fan
    result = measure_abdomen(mask, 0.5)
    assert result.ellipse.center == pytest.approx((200, 180), abs=0.5)
    assert result.ellipse.semi_axes == pytest.approx((80, 50), abs=0.5)
    a, b = result.ellipse.axes  # the major axis at the drawn 20 degrees (OpenCV may swap the axes and add 90)
    assert (result.ellipse.angle_deg + (90 if b > a else 0)) % 180 == pytest.approx(20, abs=1)
    assert result.dropped_border_points == 0 and result.contour_points > 300  # all inside the frame: nothing cut
    assert result.ac_mm == pytest.approx(ramanujan_circumference(80, 50) * 0.5, rel=0.01)


@pytest.mark.parametrize("mask, message", [
    (np.zeros((50, 50), np.uint8), "empty"),
    (np.ones((2, 50, 50), np.uint8), "must be 2-D"),
    (np.pad(np.ones((2, 2), np.uint8), 20), "too small"),
    (load_fov_mask(), "edge of the field of view"),  # the whole fan: its contour is the fan's border
])
def test_masks_without_a_usable_contour_are_refused_with_the_reason(mask, message):
    with pytest.raises(MeasurementError, match=message):
        measure_abdomen(mask)


def test_top_frames_counts_a_run_once_per_sweep():
    scores = np.zeros(40, np.float32)
    scores[5:9] = [0.7, 0.9, 0.8, 0.6]
    scores[30] = 0.5
    layout = CaseLayout.equal_sweeps(np.zeros(40, bool), 1)
    picks = top_frames(scores, layout, k=3)
    assert [p.frame for p in picks][:2] == [6, 30]
    assert (picks[0].sweep, picks[0].score) == (1, pytest.approx(0.9))


def test_top_frames_per_sweep_or_overall_above_a_minimum_and_radius_apart():
    scores = np.zeros(40, np.float32)
    scores[[2, 12, 13, 25, 30]] = [0.9, 0.85, 0.8, 0.6, 0.7]
    layout = CaseLayout.equal_sweeps(np.zeros(40, bool), 2)  # frames 0-19 and 20-39
    assert [(p.frame, p.sweep) for p in top_frames(scores, layout, k=1)] == [(2, 1), (30, 2)]
    assert [p.frame for p in top_frames(scores, layout, k=2, radius=10, per_sweep=False)] == [2, 13]  # 12 is 10 away
    assert [p.frame for p in top_frames(scores, layout, k=5, radius=1, per_sweep=False, minimum=0.7)] == [2, 12, 30]
    ties = np.where(np.arange(40) % 3 == 0, 0.5, 0).astype(np.float32)  # among equal scores the earliest frames
    assert [p.frame for p in top_frames(ties, layout, k=7, radius=0, per_sweep=False)] == [0, 3, 6, 9, 12, 15, 18]


def test_runs_and_next_good_frame():
    scores = np.array([0.1, 0.8, 0.9, 0.2, np.nan, 0.7, 0.1], np.float32)
    assert good_runs(scores, 0.5) == [(1, 3), (5, 6)]
    # a score at the threshold is good; a run may reach the last frame
    assert good_runs(np.array([0.5, 0.1, 0.6, 0.7], np.float32), 0.5) == [(0, 1), (2, 4)]
    assert next_good(scores, 0.8, 0, 1) == 1  # a score at the threshold is good
    assert next_good(scores, 0.5, 2, 1) == 5
    assert next_good(scores, 0.5, 5, -1) == 2
    assert next_good(scores, 0.5, 5, 1) is None


def test_smoothing_ignores_unscored_frames_and_keeps_them_unscored():
    scores = np.array([0.0, 1.0, np.nan, 1.0, 0.0], np.float32)
    out = smoothed(scores, 3)
    assert math.isnan(out[2])
    assert out[1] == pytest.approx(0.5)
    assert smoothed(np.array([np.nan, 0.4, np.nan], np.float32), 3)[1] == pytest.approx(0.4)  # alone, kept


def test_best_frame_skips_padding():
    scores = np.array([0.2, 0.4, np.nan, 0.3], np.float32)
    layout = CaseLayout.equal_sweeps(np.array([False, False, True, False]), 1)
    assert best_frame(scores, layout).frame == 1
    two = CaseLayout.equal_sweeps(np.array([False, False, True, False]), 2)
    assert best_frame(scores, two, two.sweeps[1]) == Pick(3, 2, pytest.approx(0.3))  # a sweep of one scored frame


def test_largest_area_frame_is_the_challenges_rule_for_seg_models():
    layout = CaseLayout.equal_sweeps(np.array([False, False, True, False, False]), 1)
    assert largest_area_frame(np.array([10, 50, 99, np.nan, 20], float), layout) == 1  # padding and unscored skipped
    assert largest_area_frame(np.array([0, 0, 99, np.nan, 0], float), layout) == -1  # no mask anywhere
    assert largest_area_frame(np.full(5, np.nan), layout) == -1
    assert largest_area_frame(np.array([0, 1, 99, np.nan, 0], float), layout) == 1  # one pixel is a mask
