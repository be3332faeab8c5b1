"""Measuring on the frame as on an ultrasound machine, through the window's keys and mouse: an
ellipse or a distance placed by a drag with its value shown live, kept with A (never one that was
not placed, never twice), locked once kept, edited only when chosen, deleted one at a time, every
change undone and redone; a SEG model's ellipse proposed and kept as the model's."""

import json
import math
import re

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from fetal_iqa_gui.case.measure import ramanujan_circumference
from fetal_iqa_gui.review.calipers import DistanceCaliper, EllipseCaliper
from tests.gui.support import export_and_wait, open_and_score

MOVE_INTERVAL_MS = 15  # pyqtgraph drops mouse moves closer together than 10 ms (its mouseRateLimit)


def to_widget(window, point_px):
    view, image = window.frame_view, window.frame_view.image
    return view.mapFromScene(image.mapToScene(QPointF(*point_px)))


def drag_on_image(window, start_px, end_px, during=None):
    """A left-drag over the frame view between two points in the frame's pixels; `during()` is
    asked what the user sees before the button is released."""
    viewport = window.frame_view.viewport()
    start, end = to_widget(window, start_px), to_widget(window, end_px)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 9):
        QTest.qWait(MOVE_INTERVAL_MS)
        QTest.mouseMove(viewport, start + (end - start) * step / 8)
    if during:
        during()
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    QTest.qWait(MOVE_INTERVAL_MS)  # a pan's new view transform is applied when the view repaints


def drag_handle(window, handle, by_px):
    """Drag one of the caliper's handles by (dx, dy) of the frame's pixels."""
    image = window.frame_view.image
    at = image.mapFromScene(handle.scenePos())
    drag_on_image(window, (at.x(), at.y()), (at.x() + by_px[0], at.y() + by_px[1]))


def click_on_image(window, point_px, double=False):
    viewport, at = window.frame_view.viewport(), to_widget(window, point_px)
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=at)
    if double:  # the second press comes as a double-click; pyqtgraph acts on it at its release
        QTest.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=at)
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=at)


def press(window, *keys):
    for key in keys:
        QTest.keySequence(window.frame_view, QKeySequence(key))


def rows(window):
    measurements = window.panel.measurements.rows
    return [measurements.item(i).text() for i in range(measurements.count())] if measurements.isVisible() else []


def status(window):
    return window.status_text.text()


def keep_ellipse(window, start_px, end_px):
    press(window, "C")
    drag_on_image(window, start_px, end_px)
    press(window, "A")


@pytest.fixture
def measuring(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    window.frame_view.setFocus()
    return window


def test_an_ellipse_shows_its_values_while_dragged_then_is_kept_and_exported(qtbot, measuring, tmp_path):
    window, frame = measuring, measuring.state.frame
    assert "None on this frame" in window.panel.measurements.hint.text() and not rows(window)
    seen = {}
    press(window, "C")
    drag_on_image(window, (200, 150), (440, 330), during=lambda: seen.update(live=window.calipers.live.toPlainText(),
                                                                            visible=window.calipers.live.isVisible(),
                                                                            status=status(window)))
    # a 240 x 180 px box: semi-axes 120 x 90, diameters 67.2 x 50.4 mm at 0.28 mm per pixel (within a pixel)
    ac, major, minor = (float(v) for v in re.fullmatch(r"AC (\S+) mm\naxes (\S+) × (\S+) mm", seen["live"]).groups())
    assert seen["visible"] and (major, minor) == (pytest.approx(67.2, abs=0.6), pytest.approx(50.4, abs=0.6))
    assert ac == pytest.approx(ramanujan_circumference(major / 2, minor / 2), abs=0.2)
    assert seen["live"].replace("\n", ", ") in seen["status"]
    assert not window.state.scored.calipers  # nothing is kept until A
    press(window, "A")
    (kept,) = window.state.scored.calipers[frame]
    assert isinstance(kept, EllipseCaliper) and kept.by == "user"
    a, b = kept.ellipse.axes
    assert (a, b) == (pytest.approx(120, abs=3), pytest.approx(90, abs=3))
    expected = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b))) * 0.28
    assert kept.ac_mm == pytest.approx(expected, rel=1e-6)
    assert rows(window) == [f"AC 1: {kept.value_text()}"]
    (drawn,) = window.calipers.locked
    assert drawn.label.toPlainText() == f"AC 1: {kept.ac_mm:.1f} mm" and not window.calipers.live.isVisible()
    assert f"AC 1, {kept.value_text()}" in status(window)
    written = export_and_wait(qtbot, window, [frame], tmp_path).written
    document = json.loads(next(p for p in written if p.suffix == ".json").read_text())
    assert document["calipers"][0]["ac_mm"] == round(kept.ac_mm, 2)
    press(window, "Right")  # the measurement belongs to its frame
    assert not window.calipers.locked and not rows(window)
    press(window, "Left")
    assert len(window.calipers.locked) == 1 and rows(window) == [f"AC 1: {kept.value_text()}"]


def test_a_distance_shows_its_length_while_dragged(measuring):
    window = measuring
    seen = []
    press(window, "D")
    drag_on_image(window, (100, 100), (400, 500), during=lambda: seen.append(window.calipers.live.toPlainText()))
    (length,) = (float(text.removesuffix(" mm")) for text in seen)
    assert length == pytest.approx(500 * 0.28, abs=0.6)
    press(window, "A")
    (kept,) = window.state.scored.calipers[window.state.frame]
    assert isinstance(kept, DistanceCaliper) and kept.length_mm == pytest.approx(500 * 0.28, rel=0.02)
    assert rows(window) == [f"distance 1: {kept.length_mm:.1f} mm"]


def test_nothing_is_kept_that_was_not_placed_nor_twice(measuring):
    window = measuring
    press(window, "A")
    assert "Nothing to keep" in status(window)
    for tool in ("C", "D"):
        press(window, tool, "A")
        assert "Place the caliper first: drag on the image" in status(window)
        assert not window.state.scored.calipers and not window.calipers.locked
    press(window, "C")
    drag_on_image(window, (300, 300), (301, 301))  # a slip of the hand, not a caliper
    press(window, "A")
    assert "Place the caliper first" in status(window) and not window.state.scored.calipers
    drag_on_image(window, (200, 150), (440, 330))
    press(window, "A", "A")
    assert len(window.state.scored.calipers[window.state.frame]) == 1 and len(rows(window)) == 1
    assert "Nothing to keep" in status(window)


def test_kept_calipers_are_locked_and_a_drag_inside_one_places_a_new_caliper(measuring):
    window = measuring
    keep_ellipse(window, (200, 150), (440, 330))
    (ellipse,) = window.state.scored.calipers[window.state.frame]
    label = window.calipers.locked[0].label.toPlainText()
    drag_on_image(window, (300, 240), (360, 260))  # no caliper in hand: the drag pans, the ellipse stays
    drag_on_image(window, (440, 240), (480, 240))  # on its outline, too
    press(window, "D")
    drag_on_image(window, (260, 240), (380, 240))  # a distance across the abdomen, inside the ellipse
    press(window, "A")
    kept_ellipse, line = window.state.scored.calipers[window.state.frame]
    assert kept_ellipse == ellipse and window.calipers.locked[0].label.toPlainText() == label
    assert line.start == pytest.approx((260, 240), abs=1) and line.end == pytest.approx((380, 240), abs=1)
    assert [row.split(":")[0] for row in rows(window)] == ["AC 1", "distance 1"]
    press(window, "C")
    drag_on_image(window, (250, 190), (390, 290))  # a second ellipse drawn inside the first
    press(window, "A")
    assert window.state.scored.calipers[window.state.frame][0] == ellipse
    assert [row.split(":")[0] for row in rows(window)] == ["AC 1", "distance 1", "AC 2"]


def test_a_kept_caliper_is_edited_only_when_chosen(measuring):
    window = measuring
    keep_ellipse(window, (200, 150), (440, 330))
    (before,) = window.state.scored.calipers[window.state.frame]
    press(window, "Esc")  # nothing in hand: the kept one stays selected and locked
    press(window, "E")
    assert window.calipers.editing == 0 and not window.calipers.locked[0].shape.isVisible()
    width_handle = next(h for h in window.calipers.roi.getHandles() if h.pos().x() == 0)  # the left middle
    seen = []
    drag_handle(window, width_handle, (-40, 0))
    seen.append(window.calipers.live.toPlainText())
    press(window, "A")
    (after,) = window.state.scored.calipers[window.state.frame]
    # the width, about the centre: 40 px each side
    assert after.ellipse.axes[0] == pytest.approx(160, abs=3) and after.ellipse.axes[1] == pytest.approx(90, abs=3)
    assert after.ellipse.center == pytest.approx(before.ellipse.center, abs=1)
    assert f"AC {after.ac_mm:.1f} mm" in seen[0] and after.ac_mm > before.ac_mm
    assert rows(window) == [f"AC 1: {after.value_text()}"] and window.calipers.locked[0].shape.isVisible()
    assert window.actions["calipers.undo"].text() == "Undo edit AC 1"
    # chosen by a double-click on its line, then left as it was with Esc
    click_on_image(window, (480, 240), double=True)
    assert window.calipers.editing == 0
    drag_handle(window, width_handle_of(window), (-30, 0))
    press(window, "Esc")
    assert window.state.scored.calipers[window.state.frame] == [after] and window.calipers.roi is None
    assert "as it was" in status(window)
    # chosen in the list: Enter edits it; A without a change keeps it as it is, and records nothing
    window.panel.measurements.rows.setFocus()
    window.panel.measurements.rows.setCurrentRow(0)
    QTest.keyClick(window.panel.measurements.rows, Qt.Key.Key_Return)
    assert window.calipers.editing == 0 and window.frame_view.hasFocus()
    press(window, "A")
    assert "unchanged" in status(window) and window.actions["calipers.undo"].text() == "Undo edit AC 1"


def width_handle_of(window):
    return next(h for h in window.calipers.roi.getHandles() if h.pos().x() == 0)


def test_delete_removes_the_selected_measurement_only(measuring):
    window = measuring
    keep_ellipse(window, (200, 150), (440, 330))
    keep_ellipse(window, (250, 190), (390, 290))
    press(window, "D")
    drag_on_image(window, (100, 450), (300, 450))
    press(window, "A")
    first, second, line = window.state.scored.calipers[window.state.frame]
    click_on_image(window, (600, 600))  # away from every caliper: none selected
    press(window, "Delete")
    assert len(window.state.scored.calipers[window.state.frame]) == 3 and "Select the measurement" in status(window)
    click_on_image(window, (200, 452))  # on the distance
    assert window.state.selected == 2 and window.panel.measurements.rows.currentRow() == 2
    assert window.calipers.locked[2].shape.pen().color().name() == "#4fc3ff"  # highlighted on the image
    press(window, "Delete")
    assert window.state.scored.calipers[window.state.frame] == [first, second]
    assert "Deleted distance 1" in status(window) and len(window.calipers.locked) == 2
    window.panel.measurements.rows.setCurrentRow(0)  # AC 1 chosen in the list, deleted with its button
    window.panel.measurements.delete_button.click()
    assert window.state.scored.calipers[window.state.frame] == [second]
    assert rows(window) == [f"AC 1: {second.value_text()}"]  # what was AC 2 is the frame's only AC now


def test_undo_and_redo_keep_edit_and_delete(measuring):
    window = measuring
    undo, redo = window.actions["calipers.undo"], window.actions["calipers.redo"]
    assert not undo.isEnabled() and not redo.isEnabled()
    frame = window.state.frame
    keep_ellipse(window, (200, 150), (440, 330))
    (kept,) = window.state.scored.calipers[frame]
    assert undo.isEnabled() and undo.text() == "Undo keep AC 1" and not redo.isEnabled()
    press(window, "E")
    drag_handle(window, width_handle_of(window), (-40, 0))
    press(window, "A")
    (edited,) = window.state.scored.calipers[frame]
    press(window, "Delete")  # the kept one is still selected
    assert frame not in window.state.scored.calipers and undo.text() == "Undo delete AC 1"
    press(window, "Right")  # undo brings the frame it changes back into view
    press(window, "Ctrl+Z")
    assert window.state.frame == frame and window.state.scored.calipers[frame] == [edited]
    assert len(window.calipers.locked) == 1 and redo.isEnabled() and redo.text() == "Redo delete AC 1"
    assert "Undone: delete AC 1" in status(window)
    press(window, "Ctrl+Z")
    assert window.state.scored.calipers[frame] == [kept] and rows(window) == [f"AC 1: {kept.value_text()}"]
    press(window, "Ctrl+Z")
    assert frame not in window.state.scored.calipers and not window.calipers.locked and not undo.isEnabled()
    press(window, "Ctrl+Shift+Z", "Ctrl+Shift+Z")
    assert window.state.scored.calipers[frame] == [edited]
    keep_ellipse(window, (250, 190), (390, 290))  # a new change: what was undone cannot be redone any more
    assert not redo.isEnabled() and redo.text() == "Redo"
    press(window, "Ctrl+Z")
    assert window.state.scored.calipers[frame] == [edited]


def test_an_implausible_spacing_refuses_to_measure(measuring):
    window = measuring
    from fetal_iqa_gui.case.spacing import Spacing
    window.state.case.spacing = Spacing((0.0, 0.0), "a damaged header")
    press(window, "C")
    assert "implausible" in window.last_alert and window.calipers.roi is None and not window.calipers.placing


def test_a_segmentation_models_ellipse_is_proposed_and_kept_as_the_models(measuring, monkeypatch):
    from fetal_iqa_gui.case.measure import Ellipse, Measurement
    window = measuring
    scored, frame = window.state.scored, window.state.frame
    fitted = Ellipse((360.0, 270.0), (110.0, 70.0), 20.0)  # what a SEG model's mask fit gives
    model_ac = ramanujan_circumference(110, 70) * 0.28
    monkeypatch.setattr(scored, "measurement_of", lambda f: Measurement(fitted, model_ac, 0.01, 400, 0) if f == frame
                        else None)
    press(window, "C")
    roi = window.calipers.roi
    assert tuple(roi.size()) == pytest.approx((220, 140)) and roi.angle() == pytest.approx(20)
    assert f"AC {model_ac:.1f} mm" in window.calipers.live.toPlainText()
    press(window, "A")  # the model placed it: it can be kept as it is
    (kept,) = scored.calipers[frame]
    assert kept.by == "model" and kept.model_ac_mm == model_ac and kept.ac_mm == pytest.approx(model_ac, rel=1e-6)
    assert kept.ellipse.center == pytest.approx((360, 270)) and rows(window)[0].endswith("the model's")
    press(window, "C", "A")  # the same proposal again: not kept twice
    assert len(scored.calipers[frame]) == 1 and "already kept" in status(window)
    press(window, "Esc", "E")
    drag_handle(window, width_handle_of(window), (-20, 0))  # adjusted: the user's, the model's AC kept beside it
    press(window, "A")
    (adjusted,) = scored.calipers[frame]
    assert adjusted.by == "user" and adjusted.model_ac_mm == model_ac and adjusted.ac_mm > model_ac
