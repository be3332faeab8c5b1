"""File > Live source…: the source, where the image is on it (whole, found by what changes, or typed),
its spacing and the recording's file; kept per source; a region typed wrong is said, not guessed."""

from PySide6.QtWidgets import QDialog

from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.gui.live_source_dialog import AUTO, WHOLE, LiveSourceDialog
from fetal_iqa_gui.live.source import Region
from tests.core.live.test_live import screen_video


def dialog_for(qtbot, source):
    dialog = LiveSourceDialog()
    qtbot.addWidget(dialog)
    dialog.source.setText(source)
    dialog.source.editingFinished.emit()
    return dialog


def test_the_region_is_read_as_typed_and_kept_for_that_source(qtbot, tmp_path):
    dialog = dialog_for(qtbot, "1")
    assert dialog.region.currentText() == WHOLE and dialog.choice().region is None
    dialog.region.setCurrentText("10,20,300")
    assert dialog.choice() is None and "is not x,y,width,height" in dialog.said.text()
    dialog.region.setCurrentText(" 10, 20, 300, 200")
    dialog.spacing.setValue(0.21)
    assert dialog.choice().region == Region(10, 20, 300, 200) and dialog.choice().spacing_mm == 0.21
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted

    again = dialog_for(qtbot, "1")  # the same capture device next time: set up once
    assert again.region.currentText() == "10, 20, 300, 200" and again.spacing.value() == 0.21
    taken = tmp_path / "taken.mha"
    taken.write_bytes(b"an earlier session")
    again.record.setText(str(taken))
    assert again.choice() is None and "taken.mha exists: choose another name" in again.said.text()
    other = dialog_for(qtbot, str(tmp_path / "video.mkv"))
    assert other.region.currentText() == WHOLE and other.choice().spacing_mm is None


def test_a_screen_recording_with_the_region_found_opens_as_a_case_of_the_image_only(
        qtbot, window, small_case, tmp_path, monkeypatch):
    clip = small_case.frames[60:90]
    video, _ = screen_video(clip, tmp_path)
    record = tmp_path / "live.mha"

    def answer(dialog):
        dialog.source.setText(str(video))
        dialog.region.setCurrentText(AUTO)
        dialog.spacing.setValue(0.3)
        dialog.record.setText(str(record))
        dialog.accept()
        return QDialog.DialogCode.Accepted
    monkeypatch.setattr(LiveSourceDialog, "exec", answer)
    window.open_live()
    qtbot.waitUntil(lambda: window.state.case is not None and window.state.case.source == record, timeout=90_000)
    recorded = load_case(record)
    assert recorded.n_frames == len(clip)
    assert recorded.frames.shape[1] < clip.shape[1] + 60 and recorded.frames.shape[2] < clip.shape[2] + 80
    assert window.state.case.spacing_mm == (0.3, 0.3)
