"""A worklist folder open in the window picks up what arrives in it: a series the receiver
(`fetal-iqa listen`) moves in shows without reopening the folder, and is scored ahead."""

import os
import shutil

import numpy as np

from fetal_iqa_gui.runs.worklist import SCORED
from tests.core.pacs.servers import needs_dcmtk
from tests.core.pacs.test_listen import Running, storescu, study
from tests.gui.support import wait_for_scoring
from tests.support import write_us_dicom


def open_worklist(qtbot, window, folder):
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.worklist.load(folder)
    wait_for_scoring(qtbot, window)


def test_a_series_moved_into_the_open_folder_shows_and_is_scored_ahead(qtbot, window, tmp_path, sweep_file):
    folder = tmp_path / "worklist"
    folder.mkdir()
    shutil.copy(sweep_file, folder / "a.mha")
    open_worklist(qtbot, window, folder)
    panel = window.worklist
    assert panel.count() == 1

    arriving = folder / ".incoming" / "study" / "series"  # as the receiver writes it: hidden until whole
    arriving.mkdir(parents=True)
    write_us_dicom(arriving / "1.dcm", np.random.default_rng(1).integers(1, 255, (10, 48, 64), np.uint8))
    qtbot.wait(800)
    assert panel.count() == 1  # a study still arriving never shows
    os.rename(arriving, folder / "20261203_US_S1_0123abcd")
    qtbot.waitUntil(lambda: panel.count() == 2, timeout=10_000)
    assert "20261203_US_S1_0123abcd" in panel.item(1).text()
    assert "New in the worklist: 20261203_US_S1_0123abcd" in window.status_text.text() \
        or "ahead" in window.status_text.text()
    qtbot.waitUntil(lambda: panel.worklist.cases[1].state == SCORED, timeout=60_000)
    assert "●" in panel.item(1).text() and window.state.case.source == folder / "a.mha"  # the user's case stays


def test_an_empty_folder_opened_waits_for_its_first_case(qtbot, window, tmp_path, sweep_file):
    folder = tmp_path / "empty"
    folder.mkdir()
    window.worklist.load(folder)
    assert window.worklist.isVisible() and window.worklist.count() == 0
    assert "each case that arrives there shows in the worklist" in window.status_text.text()
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        shutil.copy(sweep_file, folder / "a.mha")
    assert window.state.case.source == folder / "a.mha" and window.worklist.count() == 1


@needs_dcmtk
def test_a_sweep_the_scanner_sends_appears_in_the_open_worklist_scored(qtbot, window, tmp_path, sweep_file):
    folder = tmp_path / "worklist"
    folder.mkdir()
    shutil.copy(sweep_file, folder / "a.mha")
    open_worklist(qtbot, window, folder)
    receiver = Running(folder, quiet_s=0.5)
    try:
        assert storescu(receiver.port, study(tmp_path / "scanner", sweeps=1, frames=12)).returncode == 0
        qtbot.waitUntil(lambda: window.worklist.count() == 2, timeout=20_000)
        qtbot.waitUntil(lambda: window.worklist.worklist.cases[1].state == SCORED, timeout=60_000)
    finally:
        receiver.stop.set()
        receiver.thread.join(10)
