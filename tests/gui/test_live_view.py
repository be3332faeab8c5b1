"""File > Live source…: the newest frame shown at the source's rate, the quality strip, the cue at the
threshold, the best frames; the window never stalls (the stall rule of test_user_paths), and on stop the
recording opens as an ordinary case."""

import time

import numpy as np
from PySide6.QtCore import QTimer

from fetal_iqa_gui.live.source import write_lossless_video


def test_a_live_source_is_shown_scored_and_opens_as_a_case(qtbot, window, small_case, tmp_path):
    clip = small_case.frames[60:90]
    video = write_lossless_video(tmp_path / "sweep.mkv", clip)
    calls = []

    def slow(frames):  # a slow model: every fourth pass reaches the threshold
        time.sleep(0.08)
        calls.append(1)
        return np.full(len(frames), 0.9 if len(calls) % 4 == 0 else 0.2)
    gaps, last = [], [time.monotonic()]

    def tick():
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now
    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    timer.start()
    record = tmp_path / "live.mha"
    view = window.start_live(str(video), record, predict=slow)
    qtbot.waitUntil(lambda: len(view.scores) >= 8, timeout=10_000)
    timer.stop()  # the stall rule while it plays (opening the recording afterwards is the window's usual work)
    assert max(gaps) < 0.1, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
    assert view.image.image is not None and view.image.image.shape == clip.shape[1:]
    qtbot.waitUntil(lambda: window.state.case is not None and window.state.case.source == record, timeout=20_000)
    assert "GOOD" in view.cue.text() or any(score >= 0.5 for score in view.scores)
    assert view.best.count() >= 1 and "✔" in view.best.item(0).text()
    assert np.array_equal(window.state.case.frames, clip)  # the recording, opened as a case
