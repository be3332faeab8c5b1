"""Settings' PACS section: the archive's fields are kept, and its C-ECHO button asks the archive
off the GUI thread and says what came back (a real Orthanc; a port nothing listens on)."""

import pytest

from fetal_iqa_gui.gui import settings as stored
from fetal_iqa_gui.gui.settings_dialog import SettingsDialog
from tests.core.pacs.servers import ORTHANC, ORTHANC_AE, Orthanc, free_port
from tests.core.pacs.test_send import certificate


def dialog_for(qtbot, **pacs):
    dialog = SettingsDialog(stored.AppSettings(**pacs))
    qtbot.addWidget(dialog)
    return dialog


@pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed (Debian: apt-get install orthanc)")
def test_the_echo_button_says_whether_the_archive_answers(qtbot, tmp_path):
    server = Orthanc(tmp_path / "orthanc").start()
    try:
        dialog = dialog_for(qtbot, pacs_host="127.0.0.1", pacs_port=server.dicom_port, pacs_called_ae=ORTHANC_AE)
        dialog.pacs.test.click()
        assert not dialog.pacs.test.isEnabled()  # asking: the window is not waiting, the button is
        qtbot.waitUntil(lambda: dialog.pacs.test.isEnabled(), timeout=20_000)
        assert dialog.pacs.answer.text().startswith(f"✔ {ORTHANC_AE} at 127.0.0.1:{server.dicom_port} answered in")
        dialog.resize(620, dialog.sizeHint().height())

        dialog.pacs.called_ae.setText("NOTORTHANC")  # what the fields say now is what is asked
        dialog.pacs.test.click()
        qtbot.waitUntil(lambda: dialog.pacs.test.isEnabled(), timeout=20_000)
        assert "✘" in dialog.pacs.answer.text() and "it is not called 'NOTORTHANC'" in dialog.pacs.answer.text()
    finally:
        server.kill()


@pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed (Debian: apt-get install orthanc)")
def test_an_archive_on_tls_answers_once_its_ca_certificate_is_given(qtbot, tmp_path):
    cert, key = certificate(tmp_path / "tls")
    server = Orthanc(tmp_path / "orthanc", tls=(cert, key)).start()
    try:
        dialog = dialog_for(qtbot, pacs_host="127.0.0.1", pacs_port=server.dicom_port, pacs_called_ae=ORTHANC_AE)
        assert not dialog.pacs.tls_ca.isEnabledTo(dialog)  # only for TLS
        dialog.pacs.tls.setChecked(True)
        assert dialog.pacs.tls_ca.isEnabledTo(dialog)
        dialog.pacs.test.click()
        qtbot.waitUntil(lambda: dialog.pacs.test.isEnabled(), timeout=20_000)
        assert "✘" in dialog.pacs.answer.text() and "its TLS certificate is not trusted" in dialog.pacs.answer.text()
        dialog.pacs.tls_ca.setText(str(cert))
        dialog.pacs.test.click()
        qtbot.waitUntil(lambda: dialog.pacs.test.isEnabled(), timeout=20_000)
        assert dialog.pacs.answer.text().startswith(f"✔ {ORTHANC_AE} at 127.0.0.1:{server.dicom_port} (TLS) answered")
        assert dialog.result_settings().archive().tls_ca == str(cert)
    finally:
        server.kill()


def test_an_archive_not_there_or_not_named_is_said(qtbot):
    port = free_port()
    dialog = dialog_for(qtbot, pacs_host="127.0.0.1", pacs_port=port, pacs_called_ae="PACS")
    dialog.pacs.test.click()
    qtbot.waitUntil(lambda: dialog.pacs.test.isEnabled(), timeout=20_000)
    assert f"✘ Cannot send to PACS at 127.0.0.1:{port}: the connection was refused" in dialog.pacs.answer.text()
    dialog.pacs.called_ae.setText("")
    dialog.pacs.test.click()
    assert dialog.pacs.answer.text() == "✘ An AE title cannot be empty."
    dialog.pacs.host.setText("")
    dialog.pacs.called_ae.setText("PACS")
    dialog.pacs.test.click()
    assert dialog.pacs.answer.text() == "✘ Give the archive's host and called AE title."


def test_the_archive_settings_are_kept(qtbot):
    dialog = dialog_for(qtbot)
    dialog.pacs.host.setText(" pacs.example.org ")
    dialog.pacs.port.setValue(11112)
    dialog.pacs.called_ae.setText("PACS")
    dialog.pacs.tls.setChecked(True)
    stored.save_settings(dialog.result_settings())
    again = stored.load_settings()
    assert (again.pacs_host, again.pacs_port, again.pacs_called_ae, again.pacs_calling_ae, again.pacs_tls) == \
        ("pacs.example.org", 11112, "PACS", "FETALIQA", True)
    assert again.archive().describe() == "PACS at pacs.example.org:11112 (TLS)"
