"""Evaluation metrics against hand-computed cases, and the challenge's rules."""

import numpy as np
import pytest

from fetal_iqa_gui.case.case import CaseLayout
from fetal_iqa_gui.training.metrics import challenge_score, classification_metrics, roc_auc, soft_dice, wfss


def test_classification_metrics_by_hand():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.3, 0.4])
    m = classification_metrics(labels, scores, 0.5)
    # TP 2, FN 1, FP 1, TN 4
    assert m["confusion_matrix"] == [[4, 1], [1, 2]]
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(6 / 8)
    assert m["specificity"] == pytest.approx(4 / 5)


def test_roc_auc_by_hand_with_ties():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(np.array([1, 1]), np.array([0.5, 0.6])) is None


def _labels():
    gt = np.zeros((10, 4, 4), np.uint8)
    gt[3, 1:3, 1:3] = 2
    gt[4, 1:3, 1:3] = 1
    return gt


def test_wfss_rules():
    gt = _labels()
    assert wfss(gt, 4) == 1.0  # optimal
    assert wfss(gt, 3) == 0.6  # suboptimal while an optimal exists
    assert wfss(gt, 0) == 0.0 and wfss(gt, -1) == 0.0
    only_sub = gt.copy()
    only_sub[only_sub == 1] = 2
    assert wfss(only_sub, 4) == 1.0


def test_soft_dice_weights_by_distance_within_the_sweep():
    gt = _labels()
    layout = CaseLayout.equal_sweeps(np.zeros(10, bool), 1)
    fov = np.ones((4, 4), np.uint8)
    perfect = gt[4] > 0
    assert soft_dice(gt, 4, perfect, fov, layout.sweeps) == pytest.approx(1.0)
    assert soft_dice(gt, 7, perfect, fov, layout.sweeps) == pytest.approx(1 - 3 / 15)
    assert soft_dice(gt, 1, perfect, fov, layout.sweeps) == pytest.approx(1 - 2 / 15)  # no previous: the next
    assert soft_dice(gt, -1, perfect, fov, layout.sweeps) == 0.0
    assert soft_dice(gt, 7, np.zeros((4, 4), bool), fov, layout.sweeps) == 0.0  # nothing predicted


def test_soft_dice_follows_the_evaluators_quirks():
    gt = np.zeros((40, 4, 4), np.uint8)
    gt[2, 0:2, 0:2] = 1
    gt[9, 2:4, 2:4] = 1
    gt[25, :, :] = 1
    layout = CaseLayout.equal_sweeps(np.zeros(40, bool), 2)  # sweeps of 20 frames
    fov = np.ones((4, 4), np.uint8)
    # the previous annotated frame (6 back) wins over a nearer next one (1 ahead)
    assert soft_dice(gt, 8, gt[2] > 0, fov, layout.sweeps) == pytest.approx(1 - 6 / 15)
    assert soft_dice(gt, 8, gt[9] > 0, fov, layout.sweeps) == 0.0
    # nothing to compare with in reach, or only in the other sweep
    assert soft_dice(gt, 19, gt[9] > 0, fov, layout.sweeps) == pytest.approx(1 - 10 / 15)
    assert soft_dice(gt, 18, gt[25] > 0, fov, layout.sweeps) == pytest.approx((1 - 9 / 15) * 2 * 4 / (4 + 16))
    assert soft_dice(gt, 21, gt[25] > 0, fov, layout.sweeps) == pytest.approx(1 - 4 / 15)
    # the prediction is cut to the field of view; the nearby annotation it is compared with is not
    half = np.zeros((4, 4), np.uint8)
    half[:, :2] = 1
    assert soft_dice(gt, 24, gt[25] > 0, half, layout.sweeps) == pytest.approx((1 - 1 / 15) * 2 * 8 / (8 + 16))


def test_challenge_score_formula():
    cases = [{"nae_ac": 0.1, "wfss": 1.0, "dice_soft": 0.8}, {"nae_ac": 0.3, "wfss": 0.6, "dice_soft": 0.6}]
    assert challenge_score(cases) == pytest.approx(0.5 * 0.8 + 0.25 * 0.8 + 0.25 * 0.7)
