"""ViewerState: what the window shows, and a signal for each change that says what changed."""

import numpy as np

from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.gui.state import ViewerState
from fetal_iqa_gui.review.export import ModelInfo
from fetal_iqa_gui.review.scored_case import ScoredCase


def test_each_change_says_what_changed_and_nothing_else(qtbot):
    state = ViewerState()
    heard = []
    for name in ("case_changed", "frame_changed", "scores_changed", "threshold_changed", "model_changed"):
        getattr(state, name).connect(lambda *args, name=name: heard.append((name, *args)))
    state.set_frame(5)  # nothing open: nothing to move
    assert heard == [] and state.case is None and np.isnan(state.score)
    frames = np.full((12, 8, 8), 90, np.uint8)
    frames[:2] = 0  # padding first: the view starts on the first image frame
    case = Case.from_array(frames, "/data/c.mha")
    state.set_case(case)
    assert [h[0] for h in heard] == ["case_changed", "scores_changed", "frame_changed"] and state.frame == 2
    heard.clear()
    state.set_scored(ScoredCase(case, ModelInfo("m", "classification:x", 0.7)), threshold=0.6)
    assert [h[0] for h in heard] == ["model_changed", "threshold_changed", "scores_changed"]
    assert state.threshold == 0.6  # the user's, over the model's own
    heard.clear()
    state.add_scores(np.array([3, 4]), np.array([0.5, 0.9]))
    assert heard[0][0] == "scores_changed" and heard[0][1].tolist() == [3, 4] and state.scored_count == 2
    heard.clear()
    state.set_threshold(0.6)  # the same: no signal
    state.set_frame(99)  # past the end: the last frame
    assert heard == [("frame_changed", 11)]
