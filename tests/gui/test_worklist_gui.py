"""A folder as a worklist: cases open in turn, the next is scored ahead, a review is kept and restored."""

import logging
import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog

from fetal_iqa_gui.review.calipers import EllipseCaliper
from fetal_iqa_gui.gui.main_window import MainWindow
from fetal_iqa_gui.case.measure import Ellipse
from fetal_iqa_gui.base.errors import WriteError
from fetal_iqa_gui.runs.worklist import REVIEW_FILE, REVIEWED, SCORED, Worklist
from tests.gui.support import dismiss_alert, wait_for_scoring


@pytest.fixture
def cases(tmp_path, sweep_file, short_sweep_file):
    folder = tmp_path / "clinic"
    folder.mkdir()
    shutil.copy(sweep_file, folder / "a.mha")
    shutil.copy(short_sweep_file, folder / "b.mha")
    return folder


def test_a_folder_is_reviewed_case_by_case(qtbot, window, cases, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(cases))
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.actions["worklist.open_folder"].trigger()
    panel = window.worklist
    assert panel.isVisible() and panel.count() == 2 and window.state.case.source == cases / "a.mha"
    wait_for_scoring(qtbot, window)
    # while the user reviews a.mha, b.mha is scored ahead, into the cache
    qtbot.waitUntil(lambda: panel.worklist.cases[1].state == SCORED, timeout=60_000)
    assert panel.worklist.cases[0].state == SCORED and "●" in panel.item(0).text()
    frame = window.state.frame
    caliper = EllipseCaliper(Ellipse((370.0, 280.0), (90.0, 70.0), 0.0), window.state.case.spacing_mm)
    window.state.set_calipers(frame, [caliper])
    QTest.keyClick(window.frame_view, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert panel.worklist.cases[0].state == REVIEWED and "✔" in panel.item(0).text()
    with qtbot.waitSignal(window.state.model_changed, timeout=30_000):
        QTest.keyClick(window.frame_view, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert window.state.case.source == cases / "b.mha"
    assert window.state.scored.n_pending == 0  # scored ahead: all there at once
    wait_for_scoring(qtbot, window)

    reopened = MainWindow(window.settings)  # another day: the folder opened again
    qtbot.addWidget(reopened)
    with qtbot.waitSignal(reopened.state.case_changed, timeout=30_000):
        reopened.worklist.load(cases)
    wait_for_scoring(qtbot, reopened)
    assert [c.state for c in Worklist(cases).cases][0] == REVIEWED
    assert reopened.state.scored.calipers[frame][0].ac_mm == pytest.approx(caliper.ac_mm, abs=0.01)
    reopened.state.set_frame(frame)
    assert reopened.panel.measurements.rows.item(0).text() == f"AC 1: {caliper.value_text()}"
    assert len(reopened.calipers.locked) == 1


def test_a_review_the_folder_cannot_keep_is_said_kept_in_the_window_and_saved_later(qtbot, window, cases,
                                                                                     monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="fetal_iqa_gui")  # whatever an earlier test left the levels at
    import fetal_iqa_gui.runs.review_record as module
    real, writable = module.atomic_write, [False]

    def read_only(path, *args, **kwargs):  # tests run as root here, whom chmod would not stop
        if not writable[0]:
            raise WriteError(path, "the disk is read-only", "Choose a folder you can write to.")
        return real(path, *args, **kwargs)
    monkeypatch.setattr(module, "atomic_write", read_only)
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.worklist.load(cases)
    wait_for_scoring(qtbot, window)
    panel = window.worklist
    assert "a.mha is scored, but the review file could not be saved" in window.last_alert  # told at once
    dismiss_alert(qtbot, window)
    QTest.keyClick(window.frame_view, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    said = window.status_text.text()
    assert "could not be saved" in said and "read-only" in said and "kept in .fetal" not in said
    assert "could not be saved" in window.last_alert
    assert "✔" in panel.item(0).text() and "not saved" in panel.item(0).text()  # decided, in memory
    assert "could not save the review" in caplog.text
    assert not (cases / REVIEW_FILE).exists()
    dismiss_alert(qtbot, window)

    writable[0] = True  # the folder can be written again: the next save keeps the review
    QTest.keyClick(window.frame_view, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert f"kept in {cases / REVIEW_FILE}" in window.status_text.text()
    assert "not saved" not in panel.item(0).text()
    assert Worklist(cases).cases[0].state == REVIEWED


def test_a_damaged_review_file_is_set_aside_and_said_in_the_window(qtbot, window, cases):
    (cases / REVIEW_FILE).write_text('{"version": 2, "sweeps": {"a.mha": ')  # cut short: a disk that filled up
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.worklist.load(cases)
    [aside] = cases.glob(f"{REVIEW_FILE}.damaged-*")
    assert f"It is kept as {aside.name}" in window.last_alert and "damaged" in window.last_alert
    assert aside.read_text().endswith('"a.mha": ')  # what it held, kept for whoever can mend it
    wait_for_scoring(qtbot, window)
    dismiss_alert(qtbot, window)
    QTest.keyClick(window.frame_view, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert f"kept in {cases / REVIEW_FILE}" in window.status_text.text()
    assert Worklist(cases).cases[0].state == REVIEWED and aside.read_text().endswith('"a.mha": ')


def test_an_exams_dicomdir_opens_as_a_worklist_of_its_recordings(qtbot, window, tmp_path):
    from tests.core.runs.test_worklist_dicomdir import sweeps, usb_export
    usb = usb_export(tmp_path, sweeps(2, frames=8))
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.open_path(usb / "DICOMDIR")  # File > Open on it, or the folder by File > Open Folder
    panel = window.worklist
    assert panel.isVisible() and panel.count() == 2
    names = [panel.item(row).text() for row in range(2)]
    assert names[0] != names[1] and all("IM000000" in name for name in names)
    assert window.state.case.source == panel.worklist.cases[0].path
    assert window.state.case.study.patient_id == "PAT-USB"
