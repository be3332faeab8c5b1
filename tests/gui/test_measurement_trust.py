"""What the window says of the numbers it shows: the spacing and where it came from, a spacing
asked for when the file states none, sweeps and padding for a case of any length, and the case
report written without freezing the window."""

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel

from fetal_iqa_gui.gui.spacing_prompt import SpacingDialog, read_spacing

from tests.gui.support import open_and_score


def test_the_readout_names_the_spacing_and_its_source(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    text = window.frame_view.readout.text()
    assert "Spacing 0.280 × 0.280 mm (the MetaImage's header)" in text


def test_a_picture_without_calibration_asks_for_the_spacing_before_measuring(qtbot, window, tmp_path, monkeypatch):
    picture = tmp_path / "frame.png"
    frame = np.full((300, 400), 60, np.uint8)
    cv2.ellipse(frame, (200, 150), (100, 80), 0, 0, 360, 200, -1)
    cv2.imwrite(str(picture), frame)
    open_and_score(qtbot, window, picture)
    assert "Spacing unknown" in window.frame_view.readout.text()
    asked = []

    def typed(dialog):  # the user reads the dialog, types a decimal comma, presses OK
        asked.append(dialog.findChild(QLabel).text())
        assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()  # nothing typed yet
        qtbot.keyClicks(dialog.field, "0,3")
        return QDialog.DialogCode.Accepted
    monkeypatch.setattr(SpacingDialog, "exec", typed)
    window.frame_view.setFocus()
    QTest.keyClick(window.frame_view, Qt.Key.Key_C)  # the ellipse caliper needs a spacing: asked
    assert asked and "unknown" in asked[0]
    assert window.state.case.spacing.mm == (0.3, 0.3)
    assert "Spacing 0.300 × 0.300 mm (entered by the user)" in window.frame_view.readout.text()


def test_a_refused_spacing_prompt_says_why_nothing_is_measured(qtbot, window, tmp_path, monkeypatch):
    picture = tmp_path / "frame.png"
    cv2.imwrite(str(picture), np.full((100, 120), 90, np.uint8))
    open_and_score(qtbot, window, picture)
    monkeypatch.setattr(SpacingDialog, "exec", lambda dialog: QDialog.DialogCode.Rejected)
    alerts = []
    window.calipers.alert.connect(lambda title, message: alerts.append(message))
    monkeypatch.setattr(window, "alert", lambda title, message: None)
    QTest.keyClick(window.frame_view, Qt.Key.Key_C)
    assert alerts and "unknown" in alerts[0] and "Set pixel spacing" in alerts[0]


def test_a_case_of_any_length_has_its_sweeps_and_a_padding_band_per_run(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)  # 6 sweeps of 40 frames, not 840
    case = window.state.case
    assert len(case.layout.sweeps) == 6
    assert window.panel.best_frames.count() == 6
    bands = [item for item in window.timeline.decorations if hasattr(item, "getRegion")]
    assert len(bands) == len(case.layout.padding_runs()) == 6
    for band, (start, stop) in zip(bands, case.layout.padding_runs()):
        low, high = band.getRegion()
        assert (low, high) == pytest.approx((start - 0.5, stop - 0.5))
        assert not (~case.layout.padding[int(np.ceil(low)):int(high) + 1]).any()  # never over an image


def test_the_report_is_written_off_the_gui_thread(qtbot, window, sweep_file, tmp_path, monkeypatch):
    import threading
    from PySide6.QtWidgets import QFileDialog
    from fetal_iqa_gui.review import report
    open_and_score(qtbot, window, sweep_file)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path / "r")))
    (tmp_path / "r").mkdir()
    threads = []
    real = report.render_html
    monkeypatch.setattr(report, "render_html", lambda *a: threads.append(threading.current_thread()) or real(*a))
    with qtbot.waitSignal(window.exporter.report_written, timeout=60_000) as written:
        window.exporter.export_report()
        assert window.isEnabled()  # the window answers while the report is written
    assert threads and threads[0] is not threading.main_thread()
    assert written.args[0].exists() and "Report written" in window.status_text.text()


def test_the_spacing_field_reads_a_comma_and_refuses_what_is_not_a_spacing():
    assert read_spacing("0,28") == 0.28 and read_spacing(" 0.25 ") == 0.25
    assert read_spacing("") is None and read_spacing("abc") is None and read_spacing("5") is None
    assert read_spacing("nan") is None and read_spacing("0") is None


def test_nothing_is_measured_on_a_padding_frame(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    padding = int(np.flatnonzero(window.state.case.layout.padding)[0])
    window.state.set_frame(padding)
    window.frame_view.setFocus()
    QTest.keyClick(window.frame_view, Qt.Key.Key_C)
    assert "padding" in window.status_text.text() and window.calipers.roi is None
    assert window.calipers.kind is None
