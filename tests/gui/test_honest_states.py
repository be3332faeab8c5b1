"""What the window says is so: a sweep's verdict before it is fully scored, a save that failed, the
threshold's label and field, Open Recent and the export folder."""

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QToolTip

from fetal_iqa_gui.gui.settings_dialog import SettingsDialog

from tests.gui.support import dismiss_alert, open_and_score, type_into, wait_for_scoring

CTRL = Qt.KeyboardModifier.ControlModifier


def test_a_partly_scored_sweep_says_none_good_yet_and_how_much_is_scored(qtbot, window, sweep_file):
    window.settings.batch_size = 1
    with qtbot.waitSignal(window.state.model_changed, timeout=60_000):
        window.open_path(sweep_file)
    type_into(qtbot, window.panel.threshold_box, "1")  # no frame is good: each row must say how far it got
    qtbot.waitUntil(lambda: window.state.scored_count >= 4, timeout=60_000)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    wait_for_scoring(qtbot, window)
    layout, scores = window.state.case.layout, window.state.scores
    assert window.state.scored.n_pending > 0  # stopped part way
    rows, partly = window.panel.best_frames, 0
    for row, sweep in enumerate(layout.sweeps):
        text, thumbnail = rows.item(row).text(), window.thumbnails.item(row).text()
        frames = layout.image_frames(sweep)
        scored = int(np.count_nonzero(~np.isnan(scores[frames])))
        assert "none good (" not in text and "✘" not in text and "✘" not in thumbnail
        if scored == 0:
            assert "not scored yet" in text
            continue
        partly += 1
        said = re.search(r"none good yet \((\d+) % scored\)", text)
        assert said and int(said.group(1)) == 100 * scored // len(frames), text
        assert "◔" in thumbnail and "none good yet" in window.thumbnails.item(row).toolTip()
    assert partly >= 1


def test_the_timeline_labels_the_threshold_it_draws(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    label = window.timeline.threshold_line.label
    assert label.isVisible() and label.toPlainText() == "threshold 0.500"  # the model's own, not 0.000
    type_into(qtbot, window.panel.threshold_box, "0.3")
    assert label.toPlainText() == "threshold 0.300"


def test_a_decimal_comma_is_read_as_the_point_and_what_cannot_be_read_is_refused_visibly(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    box = window.panel.threshold_box
    type_into(qtbot, box, "0,3")
    assert window.state.threshold == pytest.approx(0.3) and box.text() == "0.300"
    assert window.timeline.threshold_line.label.toPlainText() == "threshold 0.300"
    type_into(qtbot, box, "x")  # nothing it can read: refused, said, and the threshold stays
    assert "Threshold: 'x' refused; type a number from 0 to 1" in QToolTip.text()
    assert window.state.threshold == pytest.approx(0.3) and box.text() == "0.300"
    QToolTip.hideText()
    type_into(qtbot, window.panel.window_box, "1,5")  # a grey-level window is whole: a comma never groups
    assert "Window: '1,' refused; type a whole number from 1 to 255" in QToolTip.text()

    dialog = SettingsDialog(window.settings, window)  # the default thresholds and the engine's numbers too
    qtbot.addWidget(dialog)
    dialog.show()
    type_into(qtbot, dialog.thresholds["classification"], "0,45")
    type_into(qtbot, dialog.thresholds["segmentation"], "0,02")
    chosen = dialog.result_settings()
    assert chosen.threshold_classification == pytest.approx(0.45) and chosen.threshold_segmentation == 0.02
    QToolTip.hideText()
    type_into(qtbot, dialog.engine_rows["batch_size"], "1,6")
    assert "Batch size: '1,' refused; type a whole number from 0 to 4096" in QToolTip.text()
    assert dialog.result_settings().batch_size == 16


def test_open_recent_lists_the_file_on_screen_at_the_top_as_soon_as_it_opens(qtbot, window, sweep_file, short_sweep_file):
    for path in (sweep_file, short_sweep_file, sweep_file):
        with qtbot.waitSignal(window.session.opened, timeout=30_000):
            window.open_path(path)
        recent = [action.text() for action in window.recent_menu.actions()]
        assert window.recent_menu.isEnabled() and recent[0] == str(path)
    assert recent[:2] == [str(sweep_file), str(short_sweep_file)]  # once each, the latest first
    wait_for_scoring(qtbot, window)


def test_the_export_folder_shown_is_ctrl_e_s_and_one_that_failed_is_asked_again(qtbot, window, sweep_file,
                                                                                tmp_path, monkeypatch):
    open_and_score(qtbot, window, sweep_file)
    chosen = [tmp_path / "chosen"]
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: asked.append(1) or str(chosen[0]))
    with qtbot.waitSignal(window.exporter.finished, timeout=30_000):  # Export current frame to…: a folder asked
        QTest.keyClick(window.frame_view, Qt.Key.Key_E, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert window.export_folder.text() == f"Export folder: {chosen[0]}"  # shown at once, not stale
    with qtbot.waitSignal(window.exporter.finished, timeout=30_000):
        QTest.keyClick(window.frame_view, Qt.Key.Key_E, CTRL)
    assert len(asked) == 1 and len(list(chosen[0].glob("*.png"))) == 2  # Ctrl+E used the folder shown

    (tmp_path / "stick").write_text("")  # the folder cannot be made: a file is in its way (root ignores chmod)
    window.settings.export_dir = str(tmp_path / "stick" / "exports")
    with qtbot.waitSignal(window.exporter.finished, timeout=30_000):
        QTest.keyClick(window.frame_view, Qt.Key.Key_E, CTRL)
    assert "Could not write" in window.last_alert and "Ctrl+E will ask for another folder" in window.last_alert
    assert window.export_folder.text() == "Export folder: not set (the first quick export asks)"
    dismiss_alert(qtbot, window)
    chosen[0] = tmp_path / "second"
    with qtbot.waitSignal(window.exporter.finished, timeout=30_000):
        QTest.keyClick(window.frame_view, Qt.Key.Key_E, CTRL)
    assert len(asked) == 2 and len(list(chosen[0].glob("*.png"))) == 1
    assert window.export_folder.text() == f"Export folder: {chosen[0]}"
