"""Measuring on the frame: place an ellipse by dragging, keep it, export it; distances; a SEG model's
ellipse proposed and accepted as the model's."""

import json
import math

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from fetal_iqa_gui.review.calipers import DistanceCaliper, EllipseCaliper
from tests.gui.support import export_and_wait, open_and_score


def drag_on_image(window, start_px, end_px):
    """A left-drag over the frame view between two points given in the frame's pixels."""
    view, image = window.frame_view, window.frame_view.image
    to_widget = lambda p: view.mapFromScene(image.mapToScene(QPointF(*p)))  # noqa: E731
    start, end = to_widget(start_px), to_widget(end_px)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 9):
        QTest.mouseMove(view.viewport(), start + (end - start) * step / 8)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)


def test_an_ellipse_dragged_kept_and_exported(qtbot, window, sweep_file, tmp_path):
    open_and_score(qtbot, window, sweep_file)
    frame = window.state.frame
    window.frame_view.setFocus()
    QTest.keyClick(window.frame_view, Qt.Key.Key_C)
    drag_on_image(window, (200, 150), (440, 330))  # a 240 x 180 px box: semi-axes 120 x 90
    QTest.keyClick(window.frame_view, Qt.Key.Key_A)
    (kept,) = window.state.scored.calipers[frame]
    assert isinstance(kept, EllipseCaliper) and kept.by == "user"
    a, b = kept.ellipse.axes
    assert (a, b) == (pytest.approx(120, abs=3), pytest.approx(90, abs=3))
    expected = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b))) * 0.28
    assert kept.ac_mm == pytest.approx(expected, rel=1e-6)
    assert f"AC {kept.ac_mm:.1f} mm" in window.panel.ac_label.text()
    written = export_and_wait(qtbot, window, [frame], tmp_path).written
    document = json.loads(next(p for p in written if p.suffix == ".json").read_text())
    assert document["calipers"][0]["ac_mm"] == round(kept.ac_mm, 2)
    window.state.set_frame(frame + 1)  # the measurement belongs to its frame
    assert not window.calipers.rois and " mm" not in window.panel.ac_label.text()
    window.state.set_frame(frame)
    assert len(window.calipers.rois) == 1
    QTest.keyClick(window.frame_view, Qt.Key.Key_Delete)
    assert frame not in window.state.scored.calipers and not window.calipers.rois


def test_a_distance_caliper(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    window.frame_view.setFocus()
    QTest.keyClick(window.frame_view, Qt.Key.Key_D)
    drag_on_image(window, (100, 100), (400, 500))
    QTest.keyClick(window.frame_view, Qt.Key.Key_A)
    (kept,) = window.state.scored.calipers[window.state.frame]
    assert isinstance(kept, DistanceCaliper)
    assert kept.length_mm == pytest.approx(500 * 0.28, rel=0.02)


def test_an_implausible_spacing_refuses_to_measure(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    window.state.case.spacing_mm = (0.0, 0.0)
    window.calipers.start_ellipse()
    assert "implausible" in window.last_alert and not window.calipers.rois


def test_a_segmentation_models_ellipse_is_proposed_and_kept_as_the_models(qtbot, window, sweep_file, monkeypatch):
    from fetal_iqa_gui.case.measure import Ellipse, Measurement, ramanujan_circumference
    open_and_score(qtbot, window, sweep_file)
    scored, frame = window.state.scored, window.state.frame
    fitted = Ellipse((360.0, 270.0), (110.0, 70.0), 20.0)  # what a SEG model's mask fit gives
    model_ac = ramanujan_circumference(110, 70) * 0.28
    monkeypatch.setattr(scored, "measurement_of", lambda f: Measurement(fitted, model_ac, 0.01, 400, 0) if f == frame
                        else None)
    window.calipers.start_ellipse()
    (roi,) = window.calipers.rois
    assert tuple(roi.size()) == pytest.approx((220, 140)) and roi.angle() == pytest.approx(20)
    window.calipers.accept()
    (kept,) = scored.calipers[frame]
    assert kept.by == "model" and kept.model_ac_mm == model_ac and kept.ac_mm == pytest.approx(model_ac, rel=1e-6)
    assert kept.ellipse.center == pytest.approx((360, 270))
    window.calipers.rois[0].setSize((260, 140))  # adjusted: the measurement is the user's, the model's AC kept
    window.calipers.accept()
    (adjusted,) = scored.calipers[frame]
    assert adjusted.by == "user" and adjusted.model_ac_mm == model_ac and adjusted.ac_mm > model_ac
