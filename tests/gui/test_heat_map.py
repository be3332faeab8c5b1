"""The heat map in the window: H shows it over the abdomen and hides it, it is computed off the
GUI thread, and scrubbing frames while it computes neither queues maps nor stalls the window."""

import time

import numpy as np
import pytest
import SimpleITK as sitk
from PySide6.QtCore import QPointF, QTimer, Qt
from PySide6.QtTest import QTest

from fetal_iqa_gui.case.acouslic import IMAGES_DIR, MASKS_DIR
from fetal_iqa_gui.engine import explain
from fetal_iqa_gui.gui import heat_maps, workers
from tests.gui.support import wait_for_scoring


@pytest.fixture
def demo_sweep(qtbot, window, sweep_file, monkeypatch):
    """The demo model on the small synthetic sweep (File > Open the demo sweep), scored; its masks."""
    monkeypatch.setattr(workers, "demo_case_path", lambda: sweep_file)
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.actions["open_demo"].trigger()
    wait_for_scoring(qtbot, window)
    dataset = sweep_file.parents[len(IMAGES_DIR.parts)]
    return sitk.GetArrayFromImage(sitk.ReadImage(str(dataset / MASKS_DIR / sweep_file.name)))


def screen_point(window, x, y):
    view = window.frame_view
    return view.mapFromScene(view.image.mapToScene(QPointF(x, y)))


def test_h_shows_the_heat_map_over_the_abdomen_and_hides_it(qtbot, window, demo_sweep):
    masks = demo_sweep
    frame = int(np.flatnonzero(masks.reshape(len(masks), -1).any(1))[5])  # the abdomen in plane
    window.state.set_frame(frame)
    window.frame_view.setFocus()
    qtbot.wait(50)
    before = window.frame_view.grab().toImage()
    QTest.keyClick(window.frame_view, Qt.Key.Key_H)
    assert heat_maps.WHAT in window.status_text.text()
    qtbot.waitUntil(lambda: window.frame_view.heat_map.isVisible(), timeout=30_000)
    assert heat_maps.WHAT == explain.DESCRIPTIONS[explain.DEFAULT_METHOD]
    assert f"Heat map: {heat_maps.WHAT}" in window.frame_view.readout.text()
    heat = window.heat_maps.explainer.cached(window.state.case.content_hash, frame)
    assert window.frame_view.heat_map.image.shape[:2] == window.state.case.frames.shape[1:]  # the frame's pixels
    x, y = heat.peak
    assert masks[frame][y, x]  # the map's peak is on the abdomen
    qtbot.wait(50)
    after = window.frame_view.grab().toImage()
    point = screen_point(window, x, y)
    ratio = after.width() / window.frame_view.width()  # the grab's device pixels
    pixel = int(point.x() * ratio), int(point.y() * ratio)
    assert before.pixelColor(*pixel) != after.pixelColor(*pixel)
    grey = before.pixelColor(*pixel)
    assert grey.red() == grey.green() == grey.blue()  # the frame alone is grey there; the map colours it
    coloured = after.pixelColor(*pixel)
    assert len({coloured.red(), coloured.green(), coloured.blue()}) > 1
    QTest.keyClick(window.frame_view, Qt.Key.Key_H)
    assert not window.frame_view.heat_map.isVisible() and "Heat map" not in window.frame_view.readout.text()
    assert window.status_text.text() == "Heat map off."


MAP_SECONDS = 0.6  # a slow model's map (ViT-L on a laptop takes about this): waiting for one would show


def test_scrubbing_while_maps_compute_shows_the_last_frame_and_never_stalls(qtbot, window, demo_sweep,
                                                                            monkeypatch):
    """The stall rule of test_user_paths: between two 10 ms ticks the GUI thread works less than
    100 ms and never waits for a map."""
    real, computed = explain.explain, []

    def slow(module, pixels, method=explain.DEFAULT_METHOD):
        time.sleep(MAP_SECONDS)
        computed.append(1)
        return real(module, pixels, method)
    monkeypatch.setattr(explain, "explain", slow)
    gaps, work, last = [], [], [time.monotonic(), time.thread_time()]

    def tick():
        now, cpu = time.monotonic(), time.thread_time()
        gaps.append(now - last[0])
        work.append(cpu - last[1])
        last[:] = now, cpu
    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    state = window.state
    start = int(state.case.layout.image_frames()[3])
    state.set_frame(start)
    window.frame_view.setFocus()
    last[:] = time.monotonic(), time.thread_time()
    timer.start()
    QTest.keyClick(window.frame_view, Qt.Key.Key_H)
    for _ in range(12):  # the user scrubs on while the first map computes
        QTest.keyClick(window.frame_view, Qt.Key.Key_Right)
        qtbot.wait(30)
        assert window.frame_view.readout.text().count("Heat map: computing") == 1  # busy, and says so
    qtbot.waitUntil(lambda: window.frame_view.heat_map.isVisible() and window.heat_maps.worker is None,
                    timeout=30_000)
    timer.stop()
    assert state.frame == start + 12
    assert len(computed) == 2  # the first frame's, then the latest: none of the frames scrubbed past
    shown = window.heat_maps.explainer.cached(state.case.content_hash, state.frame)
    assert np.array_equal(window.frame_view.heat_map.image, shown.colours)
    assert max(work) < 0.1, f"the GUI thread worked {max(work) * 1000:.0f} ms without a break"
    assert max(gaps) < MAP_SECONDS * 2 / 3, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
    state.set_frame(start)  # a frame seen before: its map at once, from the cache
    assert window.frame_view.heat_map.isVisible() and len(computed) == 2
