"""File > Export to DICOM: off the GUI thread, into the folder chosen, said when done; a second
export beside the first is a second series, never a file replaced."""

import pydicom
from PySide6.QtWidgets import QFileDialog

from tests.gui.support import open_and_score
from tests.support import BURNED_IN_REGION, burned_in_frames, write_us_dicom


def export_dicom_and_wait(qtbot, window):
    window.actions["exporter.export_dicom"].trigger()
    qtbot.waitUntil(lambda: not window.exporter.busy and "DICOM in" in window.status_text.text()
                    or bool(window.last_alert), timeout=60_000)


def test_the_menu_writes_the_chosen_frame_and_a_report_in_the_studys_and_says_so(qtbot, window, tmp_path,
                                                                                 monkeypatch):
    source = write_us_dicom(tmp_path / "ge.dcm", burned_in_frames(), regions=[BURNED_IN_REGION])
    open_and_score(qtbot, window, source)
    folder = tmp_path / "pacs"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    export_dicom_and_wait(qtbot, window)
    assert window.last_alert == ""
    shown = window.status_text.text()
    assert f"Exported to DICOM in {folder}: 1 Ultrasound Image image and a Structured Report" in shown
    first = sorted(folder.iterdir())
    assert len(first) == 2
    study = pydicom.dcmread(source).StudyInstanceUID
    assert {pydicom.dcmread(path).StudyInstanceUID for path in first} == {study}
    window.status_text.setText("")
    export_dicom_and_wait(qtbot, window)
    both = sorted(folder.iterdir())
    assert len(both) == 4 and all(path in both for path in first)
    assert {path.name for path in both} - {path.name for path in first} == {"ge_SR-2.dcm", f"{first[1].stem}-2.dcm"}
