"""The patient strip above the image and the window's title: the patient and exam a DICOM names,
"no patient details" for a file that names none (and the dialog to enter them, which the report
then carries), and the de-identified view that hides who it is."""

import json
import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QLabel

from fetal_iqa_gui.case.study import pseudonym, typed_study
from fetal_iqa_gui.gui import settings as stored
from fetal_iqa_gui.gui.main_window import MainWindow
from fetal_iqa_gui.gui.patient_dialog import PatientDialog
from fetal_iqa_gui.runs.worklist import REVIEW_FILE
from fetal_iqa_gui.gui.settings_dialog import SettingsDialog
from tests.gui.support import open_and_score, wait_for_scoring
from tests.support import BURNED_IN_REGION, burned_in_frames, write_us_dicom

PATIENT = dict(PatientName="Doe^Jane", PatientID="MRN-0042", PatientBirthDate="19950214", StudyDate="20261130",
               StudyDescription="Fetal biometry", AccessionNumber="ACC-9", OperatorsName="Smith^Ann",
               Manufacturer="Acme", ManufacturerModelName="Sono 5")


@pytest.fixture(autouse=True)
def stored_setting_forgotten():
    """The settings file is the session's: the next test starts without this one's choice."""
    yield
    stored.settings_store().remove(f"{stored.VERSION}/deidentified_view")


@pytest.fixture
def named_dicom(tmp_path):
    """A scanner's DICOM named by its UID, as they are, whose header names the patient."""
    return write_us_dicom(tmp_path / "1.2.840.113619.2.55.3.2831164356.dcm", burned_in_frames(6),
                          regions=[BURNED_IN_REGION], **PATIENT)


def strip_text(window) -> str:
    return window.patient.text.text()


def enter_details(monkeypatch, **typed):
    """Edit > Patient details: type into the fields, as a user does, and press OK."""
    def fill(dialog):
        for key, text in typed.items():
            dialog.fields[key].setText(text)
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
        return dialog.result()
    monkeypatch.setattr(PatientDialog, "exec", fill)


def write_report(qtbot, window, monkeypatch, folder) -> str:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    with qtbot.waitSignal(window.exporter.report_written, timeout=60_000) as written:
        window.exporter.export_report()
    return written.args[0].read_text(encoding="utf-8")


def test_a_dicom_names_its_patient_and_exam_in_the_strip_and_the_title(qtbot, window, named_dicom):
    open_and_score(qtbot, window, named_dicom)
    assert window.windowTitle() == "Doe, Jane - 2026-11-30 - fetal-iqa"  # not the file's UID
    text = strip_text(window)
    for value in ("Doe, Jane", "ID MRN-0042", "born 1995-02-14", "exam 2026-11-30", "Fetal biometry",
                  "accession ACC-9", "operator Smith, Ann", "Acme Sono 5"):
        assert value in text
    assert window.patient.isVisible() and window.patient.edit.isHidden()  # a DICOM's patient is its header's
    window.edit_patient()
    assert "come from its header" in window.status_text.text()


def test_a_file_without_patient_details_says_so_and_offers_to_enter_them(qtbot, window, sweep_file):
    assert window.patient.isHidden() and window.windowTitle() == "fetal-iqa"  # nothing open
    open_and_score(qtbot, window, sweep_file)
    assert strip_text(window) == "<b>No patient details in this file</b>"
    assert window.windowTitle() == f"{sweep_file.name} - fetal-iqa"
    assert window.patient.edit.isVisible() and window.patient.edit.text() == "Enter patient details…"


def test_details_entered_show_in_the_strip_the_title_and_the_report(qtbot, window, sweep_file, tmp_path,
                                                                   monkeypatch):
    open_and_score(qtbot, window, sweep_file)
    enter_details(monkeypatch, name="Roe, Mary", patient_id="H-77", birth_date="1990-05-01", study_date="2026-11-29")
    qtbot.mouseClick(window.patient.edit, Qt.MouseButton.LeftButton)  # the strip's button opens the dialog
    text = strip_text(window)
    assert "Roe, Mary" in text and "ID H-77" in text and "born 1990-05-01" in text and "(entered by hand)" in text
    assert window.windowTitle() == "Roe, Mary - 2026-11-29 - fetal-iqa"
    assert window.patient.edit.text() == "Patient details…"
    page = write_report(qtbot, window, monkeypatch, tmp_path / "report")
    for value in ("Roe, Mary", "H-77", "1990-05-01", "2026-11-29", "Entered by hand in fetal-iqa"):
        assert value in page
    assert "fill them in by hand" not in page


def test_details_left_empty_give_the_case_its_pseudonym(qtbot, window, sweep_file, tmp_path, monkeypatch):
    open_and_score(qtbot, window, sweep_file)
    enter_details(monkeypatch)
    window.edit_patient()
    alias = pseudonym(window.state.case.content_hash)
    assert alias.startswith("ANON-") and len(alias) == 13
    assert alias in strip_text(window) and "a pseudonym" in strip_text(window)
    assert alias in window.status_text.text()
    page = write_report(qtbot, window, monkeypatch, tmp_path / "report")
    assert alias in page and "A pseudonym made from the pixels" in page


def test_a_bad_date_is_refused_with_the_reason_and_the_case_keeps_its_details(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    dialog = PatientDialog(window, window.state.case)
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.fields["name"].setText("Roe, Mary")
    dialog.fields["birth_date"].setText("01/05/1990")
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted  # OK waits for a real date
    assert "YYYY-MM-DD" in dialog.problem.text() and "01/05/1990" in dialog.problem.text()
    dialog.fields["birth_date"].setText("1990-02-30")
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.isVisible() and "not a date" in dialog.problem.text()
    dialog.reject()
    assert not window.state.case.study.known and "No patient details" in strip_text(window)


def test_the_deidentified_view_hides_the_patient_on_screen_only(qtbot, window, named_dicom, tmp_path, monkeypatch):
    open_and_score(qtbot, window, named_dicom)

    def tick(dialog):
        dialog.deidentified_view.setChecked(True)
        return QDialog.DialogCode.Accepted
    monkeypatch.setattr(SettingsDialog, "exec", tick)
    window.open_settings()
    assert stored.load_settings().deidentified_view  # kept for the next start
    text, title = strip_text(window), window.windowTitle()
    for hidden in ("Doe", "Jane", "MRN-0042", "1995-02-14", "ACC-9"):
        assert hidden not in text and hidden not in title and hidden not in window.patient.text.toolTip()
    assert "Patient hidden (de-identified view)" in text and "exam 2026-11-30" in text
    assert title == "Patient hidden - 2026-11-30 - fetal-iqa"
    page = write_report(qtbot, window, monkeypatch, tmp_path / "report")
    assert "Doe, Jane" in page and "MRN-0042" in page  # a display setting: the outputs keep the patient


def test_a_reviewed_case_of_a_worklist_keeps_the_details_typed_for_it(qtbot, window, sweep_file, tmp_path,
                                                                       monkeypatch):
    folder = tmp_path / "clinic"
    folder.mkdir()
    shutil.copy(sweep_file, folder / "a.mha")
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.worklist.load(folder)
    wait_for_scoring(qtbot, window)
    enter_details(monkeypatch, name="Roe, Mary", patient_id="H-77", study_date="2026-11-29")
    window.edit_patient()
    window.worklist.mark_reviewed()
    kept = json.loads((folder / REVIEW_FILE).read_text(encoding="utf-8"))
    [record] = kept["sweeps"]["a.mha"].values()
    assert record["review"]["patient"] == {"origin": "entered by hand", "patient_name": "Roe, Mary",
                                           "patient_id": "H-77", "study_date": "2026-11-29"}

    reopened = MainWindow(window.settings)  # another day: the folder opened again
    qtbot.addWidget(reopened)
    with qtbot.waitSignal(reopened.state.case_changed, timeout=30_000):
        reopened.worklist.load(folder)
    wait_for_scoring(qtbot, reopened)
    assert "Roe, Mary" in strip_text(reopened) and "(entered by hand)" in strip_text(reopened)
    assert reopened.windowTitle() == "Roe, Mary - 2026-11-29 - fetal-iqa"


def test_the_deidentified_view_never_shows_details_typed_before(qtbot, window, sweep_file, monkeypatch):
    open_and_score(qtbot, window, sweep_file)
    window.state.set_study(typed_study("Roe, Mary", "H-77", "1990-05-01", "2026-11-29"))
    window.settings.deidentified_view = True
    window.patient.refresh()
    assert "Roe" not in strip_text(window) and "H-77" not in strip_text(window) and "Roe" not in window.windowTitle()
    dialog = PatientDialog(window, window.state.case, hide=True)
    qtbot.addWidget(dialog)
    assert all(edit.text() == "" for edit in dialog.fields.values())  # nor in the dialog's fields
    assert any("De-identified view" in label.text() for label in dialog.findChildren(QLabel))
