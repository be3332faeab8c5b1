"""The window's "blank everything outside the ultrasound image" setting: chosen in Settings, kept
for the next start, and obeyed by every export (frames and the case report), or refused in words."""

import json

import cv2
import pytest
import SimpleITK as sitk
from PySide6.QtWidgets import QDialog, QFileDialog

from fetal_iqa_gui.gui import settings as stored
from fetal_iqa_gui.gui.settings_dialog import SettingsDialog
from tests.gui.support import export_and_wait, open_and_score
from tests.support import BURNED_IN_REGION, burned_in_frames, inside_burned_in_region, write_us_dicom


@pytest.fixture(autouse=True)
def stored_setting_forgotten():
    """The settings file is the session's: the next test starts without this one's choice."""
    yield
    stored.settings_store().remove(f"{stored.VERSION}/blank_outside_image")


def choose_blanking(qtbot, window, monkeypatch):
    """Settings: tick the box and press OK, as a user does."""
    def tick(dialog):
        dialog.blank_outside_image.setChecked(True)
        return QDialog.DialogCode.Accepted
    monkeypatch.setattr(SettingsDialog, "exec", tick)
    window.open_settings()


def test_the_setting_is_kept_and_reaches_the_frames_and_the_report(qtbot, window, tmp_path, monkeypatch):
    case = write_us_dicom(tmp_path / "ge.dcm", burned_in_frames(), regions=[BURNED_IN_REGION])
    open_and_score(qtbot, window, case)
    assert not window.settings.blank_outside_image  # off unless chosen: the frames as recorded
    choose_blanking(qtbot, window, monkeypatch)
    assert window.exporter.settings.blank_outside_image and stored.load_settings().blank_outside_image
    report = export_and_wait(qtbot, window, [1], tmp_path / "frames")
    png = cv2.imread(str(next(p for p in report.written if p.suffix == ".png")), cv2.IMREAD_UNCHANGED)
    keep = inside_burned_in_region()
    assert (png[~keep] == 0).all() and (png[keep] == window.state.case.frames[1][keep]).all()
    sidecar = json.loads(next(p for p in report.written if p.suffix == ".json").read_text(encoding="utf-8"))
    assert sidecar["burned_in_annotation"] == "NO" and sidecar["pixels_blanked"].startswith("outside the ultrasound")
    assert "blanked outside the ultrasound region" in window.status_text.text()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path / "report")))
    with qtbot.waitSignal(window.exporter.report_written, timeout=60_000) as written:
        window.exporter.export_report()
    assert "Every pixel outside the ultrasound region (DICOM US regions) is blanked" in written.args[0].read_text(encoding="utf-8")
    assert "blanked outside the ultrasound region" in window.status_text.text()


def test_a_recording_that_cannot_be_blanked_is_not_exported_and_the_window_says_why(qtbot, window, tmp_path,
                                                                                     monkeypatch):
    case = tmp_path / "aloka.mha"
    sitk.WriteImage(sitk.GetImageFromArray(burned_in_frames()), str(case))
    open_and_score(qtbot, window, case)
    choose_blanking(qtbot, window, monkeypatch)
    report = export_and_wait(qtbot, window, [0], tmp_path / "frames")
    assert report.written == [] and not (tmp_path / "frames").exists()
    alert = window.last_alert
    assert "cannot be blanked" in alert and "240 x 180 px" in alert and "nothing was exported" in alert
    assert "Settings > blank everything outside the ultrasound image" in alert  # where to turn it off


def test_the_settings_checkbox_says_what_it_does(qtbot, window):
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    box = dialog.blank_outside_image
    assert box.text() == "blank everything outside the ultrasound image (burned-in text)" and not box.isChecked()
    assert "ultrasound regions" in box.toolTip() and "744 x 562" in box.toolTip()
    box.setChecked(True)
    assert dialog.result_settings().blank_outside_image
