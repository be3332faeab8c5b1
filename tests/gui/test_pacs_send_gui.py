"""File > Send to PACS against a real archive (Orthanc): the chosen frame and the report arrive in
the sweep's study; an archive that is not there keeps them queued, says so, and a later send
delivers them (once: not a second series). The window never waits for the archive."""

from dataclasses import replace

import pydicom
import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from fetal_iqa_gui.gui.pacs_sender import PacsSender
from fetal_iqa_gui.pacs.outbox import Outbox
from tests.core.pacs.servers import ORTHANC, ORTHANC_AE, Orthanc
from tests.gui.support import open_and_score
from tests.support import BURNED_IN_REGION, burned_in_frames, write_us_dicom

needs_orthanc = pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed (Debian: apt-get install orthanc)")


@pytest.fixture
def scored_dicom(qtbot, window, tmp_path):
    source = write_us_dicom(tmp_path / "ge.dcm", burned_in_frames(), regions=[BURNED_IN_REGION], PatientID="PAT-7")
    open_and_score(qtbot, window, source)
    return source


def use_archive(window, server):
    window.settings = replace(window.settings, pacs_host="127.0.0.1", pacs_port=server.dicom_port,
                              pacs_called_ae=ORTHANC_AE)


def send_and_wait(qtbot, window, action="pacs.send_case"):
    window.status_text.setText("")
    window.actions[action].trigger()
    qtbot.waitUntil(lambda: not window.pacs.busy and window.status_text.text()
                    and not window.status_text.text().startswith("Sending"), timeout=60_000)


@needs_orthanc
def test_send_to_pacs_stores_the_frame_and_the_report_in_the_sweeps_study(qtbot, window, scored_dicom, tmp_path):
    server = Orthanc(tmp_path / "orthanc", {"FETALIQA": 1}).start()
    try:
        use_archive(window, server)
        send_and_wait(qtbot, window)
        assert window.last_alert == ""
        assert window.status_text.text() == f"Sent 2 files to {ORTHANC_AE} at 127.0.0.1:{server.dicom_port}."
        stored = server.instances()
        study = pydicom.dcmread(scored_dicom, stop_before_pixels=True).StudyInstanceUID
        assert {tags["StudyInstanceUID"] for tags in stored} == {study}
        assert sorted(tags["Modality"] for tags in stored) == ["SR", "US"]
        assert {tags["PatientID"] for tags in stored} == {"PAT-7"}
        assert Outbox().entries() == [] and window.statusBar().outbox.isHidden()
    finally:
        server.kill()


@needs_orthanc
def test_an_archive_not_there_keeps_the_case_queued_and_the_next_send_delivers_it_once(
        qtbot, window, scored_dicom, tmp_path, monkeypatch):
    monkeypatch.setattr(PacsSender, "retry_delays", (0.05,))
    server = Orthanc(tmp_path / "orthanc", {"FETALIQA": 1})  # configured, not started yet
    use_archive(window, server)
    send_and_wait(qtbot, window)
    assert f"the connection was refused: nothing listens on port {server.dicom_port}" in window.last_alert
    assert "2 files stay queued and are sent next time" in window.last_alert
    assert len(Outbox().entries()) == 2
    bar = window.statusBar()
    assert bar.outbox.isVisible() and bar.outbox.text() == "Outbox: 2 queued for PACS"
    box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
    box.close()

    server.start()
    try:
        window.last_alert = ""
        send_and_wait(qtbot, window)  # the same review: what is queued goes, nothing is written again
        assert window.last_alert == ""
        assert window.status_text.text().startswith("Sent 2 files to")
        assert len(server.instances()) == 2 and Outbox().entries() == [] and bar.outbox.isHidden()
    finally:
        server.kill()


def test_send_queued_files_sends_each_to_its_archive_and_says_when_there_is_none(qtbot, window, tmp_path,
                                                                                 monkeypatch):
    send_and_wait(qtbot, window, "pacs.send_queued")
    assert window.status_text.text() == "Nothing is queued for an archive: the outbox is empty."
    assert window.actions["pacs.send_queued"].isEnabled() and not window.actions["pacs.send_case"].isEnabled()


def test_no_archive_set_up_offers_settings(qtbot, window, scored_dicom, monkeypatch):
    asked = []

    def answer(box):
        asked.append(box.text())
        box.show()
        box.hide()
        return 0  # closed: nothing sent
    monkeypatch.setattr(QMessageBox, "exec", answer)
    window.actions["pacs.send_case"].trigger()
    assert "No archive (PACS) is set up" in asked[0] and "Settings > PACS" in asked[0]
    assert window.status_text.text() == "Nothing was sent: no archive is set up (File > Settings… > PACS)."
    assert not window.pacs.busy and window.last_alert == "" and Outbox().entries() == []
