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


def test_h_toggles_the_heat_map_of_the_latest_scored_frame_computed_only_while_on(qtbot, window, small_case,
                                                                                   tmp_path):
    from fetal_iqa_gui.engine import explain
    from fetal_iqa_gui.model.loading import load_model
    from fetal_iqa_gui.model.spec import ModelSpec
    clip = small_case.frames[60:120]
    video = write_lossless_video(tmp_path / "sweep.mkv", clip)
    module = load_model(ModelSpec.demo_model("classification")).module
    computed = []

    class Counting(explain.Explainer):
        def heat_map(self, case_key, frame, pixels):
            computed.append(frame)
            return super().heat_map(case_key, frame, pixels)

    def slow(frames):
        time.sleep(0.05)
        return np.full(len(frames), 0.3)
    view = window.start_live(str(video), None, predict=slow, make_explainer=lambda: Counting(module))
    qtbot.waitUntil(lambda: len(view.scores) >= 3, timeout=10_000)
    assert not computed and not view.heat_image.isVisible()  # off: no map is computed
    view.toggle_heat_map()
    qtbot.waitUntil(lambda: view.heat_image.isVisible(), timeout=10_000)
    assert view.heat_image.image.shape == (*clip.shape[1:], 4)  # over the frame, in its pixels
    assert view.heat_frame in view.frames and "explanation aid" in view.status.text()
    qtbot.waitUntil(lambda: len(set(computed)) >= 2, timeout=10_000)  # it follows the latest scored frame
    view.toggle_heat_map()
    assert not view.heat_image.isVisible() and view.status.text() == "Heat map off."
    qtbot.wait(300)
    done = len(computed)
    qtbot.wait(500)
    assert len(computed) == done  # off again: nothing more computed
    view.stop()
    view.worker.wait(5000)
