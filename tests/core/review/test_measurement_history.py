"""Undo and redo of the measurements kept on a case's frames: keep, edit, delete, each undone in turn."""

from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.case.measure import Ellipse
from fetal_iqa_gui.review.calipers import DistanceCaliper, EllipseCaliper
from fetal_iqa_gui.review.measurement_history import HISTORY_LIMIT, MeasurementHistory
from fetal_iqa_gui.review.scored_case import ScoredCase


def test_each_change_is_undone_and_redone_in_turn(small_case):
    scored = ScoredCase(Case.from_array(small_case.frames, "/data/case-1.mha", sweeps=6))
    ac = EllipseCaliper(Ellipse((372.0, 280.0), (120.0, 90.0), 0.0), (0.28, 0.28))
    edited = EllipseCaliper(Ellipse((372.0, 280.0), (130.0, 90.0), 0.0), (0.28, 0.28))
    line = DistanceCaliper((100.0, 100.0), (160.0, 180.0), (0.28, 0.28))
    history = MeasurementHistory()
    assert history.next_undo is None and history.undo(scored) is None and history.redo(scored) is None
    history.change(scored, 5, [ac], "keep AC 1")
    history.change(scored, 5, [ac, line], "keep distance 1")
    history.change(scored, 5, [edited, line], "edit AC 1")
    history.change(scored, 5, [edited], "delete distance 1")
    assert history.next_undo.what == "delete distance 1" and history.next_redo is None
    assert history.undo(scored).what == "delete distance 1" and scored.calipers[5] == [edited, line]
    assert history.undo(scored).what == "edit AC 1" and scored.calipers[5] == [ac, line]
    assert history.next_redo.what == "edit AC 1"
    assert history.redo(scored).what == "edit AC 1" and scored.calipers[5] == [edited, line]
    history.undo(scored), history.undo(scored), history.undo(scored)
    assert 5 not in scored.calipers and history.next_undo is None  # the frame has no measurement again
    history.redo(scored)
    history.change(scored, 9, [line], "keep distance 1")  # a new change forgets what was undone
    assert history.next_redo is None and scored.calipers == {5: [ac], 9: [line]}


def test_the_history_is_bounded(small_case):
    scored = ScoredCase(Case.from_array(small_case.frames, "/data/case-1.mha", sweeps=6))
    history = MeasurementHistory()
    line = DistanceCaliper((100.0, 100.0), (160.0, 180.0), (0.28, 0.28))
    for step in range(HISTORY_LIMIT + 10):
        history.change(scored, 5, [line] * (step % 3), f"change {step}")
    undone = 0
    while history.undo(scored):
        undone += 1
    assert undone == HISTORY_LIMIT
