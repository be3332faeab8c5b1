"""Receiving from the scanner in the window (Settings > Receive from the scanner): the window runs
`fetal-iqa listen`'s receiver while it is open; a study DCMTK's storescu sends shows in the worklist
and is scored; a port taken or settings half filled say why; closing the window stops it."""

import socket
from dataclasses import replace

from PySide6.QtWidgets import QDialogButtonBox

from fetal_iqa_gui.gui.main_window import MainWindow
from fetal_iqa_gui.gui.settings_dialog import SettingsDialog
from fetal_iqa_gui.runs.worklist import SCORED
from tests.core.pacs.servers import free_port, needs_dcmtk
from tests.core.pacs.test_listen import SCANNER, storescu, study


def receiving(window, folder, port):
    return replace(window.settings, receive_on=True, receive_folder=str(folder), receive_port=port,
                   receive_allowed=f"{SCANNER}, OTHER")


def started(qtbot, window, settings):
    window.receiver.apply(settings)
    bar = window.statusBar()
    qtbot.waitUntil(lambda: bar.receiving.isVisible(), timeout=10_000)
    return bar.receiving.text()


@needs_dcmtk
def test_a_study_the_scanner_sends_opens_in_the_worklist_scored(qtbot, window, tmp_path):
    port = free_port()
    folder = tmp_path / "received"
    assert started(qtbot, window, receiving(window, folder, port)) == f"Receiving as FETALIQA on port {port}"
    assert window.state.case is None
    sent = storescu(port, study(tmp_path / "scanner", sweeps=2, frames=12))
    assert sent.returncode == 0, sent.stderr
    qtbot.waitUntil(lambda: window.worklist.isVisible() and window.worklist.count() == 2, timeout=30_000)
    assert window.worklist.worklist.folder == folder
    qtbot.waitUntil(lambda: window.state.case is not None and window.state.scores is not None, timeout=60_000)
    qtbot.waitUntil(lambda: all(case.state == SCORED for case in window.worklist.worklist.cases), timeout=90_000)

    stranger = storescu(port, study(tmp_path / "other", sweeps=1), calling="STRANGER")
    assert stranger.returncode != 0  # refused when it associates
    qtbot.waitUntil(lambda: "STRANGER" in window.status_text.text(), timeout=10_000)
    assert window.last_alert == "" and window.worklist.count() == 2

    window.close()  # the receiver stops with the window: the port is free again
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a receiver would: past TIME_WAIT
        probe.bind(("", port))
        probe.listen()


def test_a_port_another_program_holds_is_said_and_the_window_goes_on(qtbot, window, tmp_path):
    with socket.socket() as holder:
        holder.bind(("", 0))
        holder.listen()
        port = holder.getsockname()[1]
        window.receiver.apply(receiving(window, tmp_path / "received", port))
        qtbot.waitUntil(lambda: window.last_alert != "", timeout=10_000)
    assert f"Cannot listen on port {port}" in window.last_alert and "Choose another port in Settings" in window.last_alert
    assert window.statusBar().receiving.isHidden() and window.receiver.worker is None


def test_settings_refuse_receiving_without_a_folder_or_a_scanner_and_save_it_when_set(qtbot, window, tmp_path):
    dialog = SettingsDialog(window.settings)
    qtbot.addWidget(dialog)
    group = dialog.receive
    group.on.setChecked(True)
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    ok.click()
    assert dialog.result() == 0
    assert group.said.text() == "Receiving needs the folder received sweeps go into."
    group.folder.setText(str(tmp_path / "received"))
    ok.click()
    assert group.said.text() == "Receiving needs the AE title of at least one scanner it accepts."
    group.allowed.setText("VOLUSON1 A_TITLE_FAR_TOO_LONG")
    ok.click()
    assert group.said.text() == ("'A_TITLE_FAR_TOO_LONG' is longer than 16 characters, which DICOM allows for an "
                                 "AE title.")
    group.allowed.setText("VOLUSON1,  LOGIQ_E10")
    ok.click()
    assert dialog.result() == 1 and group.said.isHidden()
    chosen = dialog.result_settings()
    assert chosen.receive_allowed == "VOLUSON1, LOGIQ_E10"
    assert chosen.receiving() == (tmp_path / "received", 11112, ("VOLUSON1", "LOGIQ_E10"), "FETALIQA")


def test_receiving_starts_with_the_window_that_was_set_to_receive(qtbot, tiny_cls_path, tmp_path, monkeypatch):
    monkeypatch.setenv("FETAL_IQA_OUTBOX", str(tmp_path / "outbox"))
    from fetal_iqa_gui.gui import settings as stored
    port = free_port()
    settings = stored.AppSettings(adapter=str(tiny_cls_path), device="cpu", precision="fp32", receive_on=True,
                                  receive_folder=str(tmp_path / "received"), receive_port=port,
                                  receive_allowed=SCANNER)
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.statusBar().receiving.isVisible(), timeout=10_000)
    window.close()
    assert window.receiver.worker is None


def test_a_full_disk_refusing_a_whole_study_is_one_dialog_not_one_for_each_instance(qtbot, window):
    from fetal_iqa_gui.pacs.listen import FAILED
    alerts, statuses = [], []
    window.receiver.alert.connect(lambda title, message: alerts.append(message))
    window.receiver.status.connect(statuses.append)
    window.receiver.worker = thread = object()  # as if running: its events are the window's
    for number in range(300):  # a study of single frames, each instance refused
        window.receiver._on_event(thread, FAILED, f"an instance from SCANNER could not be written ({number})", [])
    assert len(alerts) == 1 and "(0)" in alerts[0]
    assert statuses[-1] == "An instance from SCANNER could not be written (299)."
    window.receiver.worker = None
