"""The main window as a sonographer uses it: open, watch scores arrive, navigate, export, cancel, close."""

import json

import cv2
import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from fetal_iqa_gui.gui.actions import SHORTCUTS
from tests.gui.support import export_and_wait, open_and_score, wait_for_scoring


def test_opening_a_sweep_scores_every_image_frame(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    state = window.state
    images = ~state.case.layout.padding
    assert not np.isnan(state.scores[images]).any()
    assert np.isnan(state.scores[~images]).all()  # padding is never scored
    assert "scored" in window.status_text.text() and "best frame" in window.status_text.text()
    scored_by = window.session.engine.for_case(state.case)  # it names the black patches it skips, if it does
    assert window.status_text.text().endswith(f"| {scored_by.description}")
    timeline_y = window.timeline.curve.getData()[1]
    np.testing.assert_allclose(timeline_y[images], state.scores[images])
    assert window.panel.best_frames.count() == len(state.case.layout.sweeps)


def test_an_empty_window_says_how_to_open_a_sweep_and_shows_no_stale_marks(qtbot, window, sweep_file):
    view, timeline = window.frame_view, window.timeline
    assert view.empty_text.isVisible() and "File > Open" in view.empty_text.toPlainText()
    assert not view.readout.isVisible() and not view.padding_text.isVisible()
    assert not timeline.threshold_line.isVisible() and not timeline.current_line.isVisible()
    open_and_score(qtbot, window, sweep_file)
    assert not view.empty_text.isVisible() and view.readout.isVisible()
    assert timeline.threshold_line.isVisible() and timeline.current_line.isVisible()


def test_keys_move_the_frame(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    window.state.set_frame(5)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.state.frame == 6
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.state.frame == 16
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.state.frame == 0
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.state.frame == int(np.nanargmax(window.state.scores))
    for shortcut in SHORTCUTS:  # every declared key is bound to its action's QAction
        bound = [key.toString() for key in window.actions[shortcut.name].shortcuts()]
        assert bound == [QKeySequence(key).toString() for key in shortcut.keys], shortcut.name


def test_clicking_the_timeline_jumps_there(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    view = window.timeline.plotItem.vb
    target = view.mapViewToScene(pg_point(120, 0.15))  # away from the threshold line
    position = window.timeline.mapFromScene(target)
    qtbot.mouseClick(window.timeline.viewport(), Qt.MouseButton.LeftButton, pos=position)
    assert abs(window.state.frame - 120) <= 1
    assert "Frame" in window.frame_view.readout.text()


def pg_point(x, y):
    from PySide6.QtCore import QPointF
    return QPointF(x, y)


def test_export_writes_the_original_pixels_and_a_sidecar(qtbot, window, sweep_file, tmp_path):
    open_and_score(qtbot, window, sweep_file)
    frame = int(np.nanargmax(window.state.scores))
    written = export_and_wait(qtbot, window, [frame], tmp_path).written
    png = next(p for p in written if p.suffix == ".png")
    assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), window.state.case.frames[frame])
    sidecar = json.loads(next(p for p in written if p.suffix == ".json").read_text())
    assert sidecar["frame"] == frame and sidecar["model"] == "tiny classification test model"
    assert sidecar["source"] == str(sweep_file.resolve())
    # exporting again refuses to overwrite and says so
    assert export_and_wait(qtbot, window, [frame], tmp_path).written == []
    assert "already exists" in window.last_alert
    window.settings.sidecar_name_only = True  # Settings: the sweep by its file name only (folders may name patients)
    written = export_and_wait(qtbot, window, [frame], tmp_path / "private").written
    assert json.loads(next(p for p in written if p.suffix == ".json").read_text())["source"] == sweep_file.name


def test_cancel_stops_scoring_and_keeps_the_scores(qtbot, window, sweep_file):
    window.settings.batch_size = 1
    with qtbot.waitSignal(window.state.case_changed, timeout=60_000):
        window.open_path(sweep_file)
    qtbot.waitUntil(lambda: window.state.scored_count >= 3, timeout=60_000)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.session.scorer.isFinished() and window.progress.isHidden(), timeout=30_000)
    scored = window.state.scored_count
    assert 3 <= scored < int((~window.state.case.layout.padding).sum())
    assert "stopped" in window.status_text.text()


def test_closing_during_scoring_is_clean(qtbot, window, sweep_file):
    window.settings.batch_size = 1
    with qtbot.waitSignal(window.state.case_changed, timeout=60_000):
        window.open_path(sweep_file)
    qtbot.waitUntil(lambda: window.state.scored_count >= 1, timeout=60_000)
    window.close()
    assert window.session.scorer.isFinished()


def test_closing_while_a_sweep_opens_starts_no_scoring(qtbot, window, sweep_file):
    window.open_path(sweep_file)
    loader = window.session.loader
    window.close()  # waits for the loader; its "loaded" signal arrives after the window closed
    assert loader.isFinished()
    qtbot.wait(200)
    assert window.session.scorer is None  # a thread started now would outlive the app (Qt aborts)


def test_bad_file_keeps_the_open_sweep(qtbot, window, sweep_file, tmp_path):
    open_and_score(qtbot, window, sweep_file)
    before = window.state.case
    bad = tmp_path / "broken.mha"
    bad.write_text("not an image")
    window.open_path(bad)
    qtbot.waitUntil(lambda: "broken.mha" in window.last_alert, timeout=10_000)
    assert window.state.case is before
    assert "broken.mha" in window.last_alert and "broken.mha" in window.status_text.text()


def test_padding_frames_are_shown_as_padding(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    padding = int(np.flatnonzero(window.state.case.layout.padding)[0])
    window.state.set_frame(padding)
    qtbot.waitUntil(lambda: "Padding" in window.frame_view.readout.text())
    assert window.frame_view.padding_text.isVisible()


def test_overlay_copy_is_exported_when_asked(qtbot, window, sweep_file, tmp_path):
    open_and_score(qtbot, window, sweep_file)
    window.settings.export_overlay = True
    frame = int(np.nanargmax(window.state.scores))
    written = export_and_wait(qtbot, window, [frame], tmp_path).written
    overlay = next(p for p in written if p.name.endswith("_overlay.png"))
    image = cv2.imread(str(overlay))
    assert image.shape[:2] == window.state.case.frames.shape[1:] and image.shape[2] == 3


def test_segmentation_model_shows_masks_and_the_ac_panel(qtbot, window, short_sweep_file, tiny_seg_path):
    window.settings.adapter = str(tiny_seg_path)
    open_and_score(qtbot, window, short_sweep_file, timeout=180_000)
    assert window.state.masks is not None and window.state.model.is_segmentation
    assert window.state.threshold == 0.01
    window.state.set_frame(int(np.nanargmax(window.state.scores)))
    assert "AC" in window.panel.ac_label.text()


def test_window_level_changes_the_display_not_the_data(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    before = window.state.case.frames.copy()
    window.panel.window_box.setValue(100)
    window.panel.level_box.setValue(60)
    assert window.frame_view.image.levels.tolist() == [10, 110]
    window.reset_levels()
    assert window.frame_view.image.levels.tolist() == [0, 255]
    assert np.array_equal(before, window.state.case.frames)


def test_demo_without_disk_space_says_so_and_writes_nothing(qtbot, window, monkeypatch, tmp_path):
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 50 << 20))
    window.open_demo()
    qtbot.waitUntil(lambda: "disk space" in window.status_text.text(), timeout=10_000)
    assert "needs about 200 MB of free disk space" in window.status_text.text()
    assert "there are 50 MB" in window.status_text.text()
    assert window.state.case is None and "Supported" not in window.last_alert
    assert not list(tmp_path.rglob("*.mha"))


def test_demo_opens_the_synthetic_sweep_with_the_labelled_demo_model(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.state.case_changed, timeout=120_000):
        window.open_demo()
    wait_for_scoring(qtbot, window, timeout=300_000)
    assert window.state.case.n_frames == 840 and len(window.state.case.layout.sweeps) == 6
    assert window.state.model.is_demo
    assert "Demo model" in window.banner.text() and not window.banner.isHidden()
    assert "not for clinical use" in window.status_text.text()
    written = export_and_wait(qtbot, window, [int(np.nanargmax(window.state.scores))], tmp_path).written
    assert json.loads(next(p for p in written if p.suffix == ".json").read_text())["demo_model"] is True
    assert window.settings.adapter  # the user's own model setting is left alone
