"""ScoredCase: the questions both front doors ask of a scored case, answered once."""

import numpy as np
import pytest

from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.review.export import ModelInfo
from fetal_iqa_gui.review.scored_case import ScoredCase

CLS = ModelInfo("tiny", "classification:abc", 0.5)
SEG = ModelInfo("tiny-seg", "segmentation:abc", 0.01, task="segmentation")


@pytest.fixture
def case():
    """Two sweeps of 10 frames; the last two frames of each are padding (black)."""
    frames = np.full((20, 8, 8), 90, np.uint8)
    frames[[8, 9, 18, 19]] = 0
    return Case.from_array(frames, "/data/two.mha", sweeps=2)


def test_a_new_case_starts_unscored_at_its_models_own_threshold(case):
    scored = ScoredCase(case, SEG)
    assert scored.threshold == 0.01 and scored.n_scored == 0 and scored.n_pending == 16
    assert scored.is_good(0) is None and scored.best_frame() is None
    assert [best.candidate for best in scored.best_per_sweep()] == [None, None]
    assert ScoredCase(case).threshold == 0.5  # no model yet: a CLS model's default


def test_each_sweep_has_a_best_frame_only_when_it_reaches_the_threshold(case):
    scored = ScoredCase(case, CLS)
    scored.add(np.array([1, 3, 11, 12]), np.array([0.2, 0.7, 0.3, 0.4]))
    first, second = scored.best_per_sweep()
    assert (first.frame, first.good) == (3, True)
    assert (second.frame, second.good) == (12, False)  # its top candidate, honestly not good
    assert scored.is_good(3) and scored.is_good(11) is False and scored.is_good(5) is None
    assert scored.good_frames().tolist() == [3] and scored.next_good(0) == 3 and scored.next_good(4) is None
    scored.threshold = 0.35
    assert scored.best_per_sweep()[1].good and scored.good_frames().tolist() == [3, 12]



def test_a_partly_scored_sweep_has_no_good_frame_yet_never_none_good(case):
    scored = ScoredCase(case, CLS)
    scored.add(np.r_[0, 1, 10:18], np.full(10, 0.2))  # sweep 2 (frames 10-17) is all scored
    first, second = scored.best_per_sweep()
    assert not first.good and not first.complete and first.verdict == "none good yet (25 % scored)"
    assert second.complete and second.verdict == "none good"
    scored.add(np.arange(2, 7), np.full(5, 0.2))
    assert scored.best_per_sweep()[0].verdict == "none good yet (87 % scored)"  # 7 of 8: never "100 %" short
    scored.add(np.array([7]), np.array([0.9]))
    assert scored.best_per_sweep()[0].verdict == "good"

def test_a_copy_is_the_windows_own(case):
    scored = ScoredCase(case, CLS)
    scored.add(np.array([0]), np.array([0.9]))
    copy = scored.copy()
    scored.add(np.array([1]), np.array([0.8]))
    copy.threshold = 0.95
    assert copy.n_scored == 1 and scored.n_scored == 2 and scored.threshold == 0.5


def test_masks_arrive_with_their_scores_and_give_each_frame_its_area(case):
    scored = ScoredCase(case, SEG)
    mask = np.zeros((1, 224, 224), bool)
    mask[0, :10, :10] = True
    scored.add(np.array([2]), np.array([100 / 224 ** 2]), mask)
    assert scored.masks.shape == (20, 224, 224) and scored.mask_area_px[2] == 100 and scored.mask_area_px[3] == 0
    assert scored.mask_of(2).shape == (8, 8)  # at the frame's own size
    assert scored.mask_of(3) is None  # unscored: no mask to show
