"""The window through the user's doors: every menu item, every key, every field typed into, the
timeline dragged, and a window that never stalls while a slow model scores."""

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from fetal_iqa_gui.gui import exporter as exporter_module
from fetal_iqa_gui.gui import settings as stored
from fetal_iqa_gui.gui import workers
from fetal_iqa_gui.case.measure import Ellipse
from fetal_iqa_gui.engine.scoring import Engine
from fetal_iqa_gui.gui.actions import ACTIONS, REDO, SHORTCUTS, UNDO, Action
from fetal_iqa_gui.review.calipers import EllipseCaliper
from fetal_iqa_gui.gui.settings_dialog import SettingsDialog
from tests.support import write_dicom_series
from tests.gui.support import open_and_score, wait_for_scoring


@pytest.fixture
def answered(monkeypatch, tmp_path, sweep_file):
    """Every file dialog and modal box answered as a user would: a fresh folder or file name each time."""
    counter = iter(range(1000))
    dicom = write_dicom_series(tmp_path / "dicom", np.random.default_rng(2).integers(1, 255, (4, 24, 32), np.uint8))

    def folder(parent, caption, *rest, **options):
        if "DICOM" in caption:
            return str(dicom)
        made = tmp_path / f"out{next(counter)}"
        made.mkdir()
        return str(made)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(sweep_file), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", folder)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / f"s{next(counter)}.csv"), ""))
    monkeypatch.setattr(QDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    monkeypatch.setattr(QMessageBox, "exec", lambda self: 0)
    monkeypatch.setattr(exporter_module.Exporter, "confirm", lambda self, question, yes: True)
    monkeypatch.setattr(workers, "demo_case_path", lambda: sweep_file)  # the demo's path, not its 840 frames
    return tmp_path


def idle(qtbot, window):
    """Until no thread of the window runs and their signals have been handled."""
    qtbot.waitUntil(lambda: not window.session._threads and not window.exporter.busy and not window.pacs.busy
                    and window.progress.isHidden(), timeout=60_000)
    qtbot.wait(10)


def test_every_menu_item_works_twice_on_an_open_sweep(qtbot, window, sweep_file, answered):
    open_and_score(qtbot, window, sweep_file)
    stored.add_recent_file(str(sweep_file))
    window._fill_recent()
    items = [a for a in ACTIONS if isinstance(a, Action) and a.name != "close"]
    for spec in items:
        for _ in range(2):
            window.actions[spec.name].trigger()
            idle(qtbot, window)
            assert window.last_alert == "", f"{spec.text}: {window.last_alert}"
    for _ in range(2):  # File > Open Recent > the sweep (the menu is rebuilt by each opening)
        with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
            next(a for a in window.recent_menu.actions() if a.text() == str(sweep_file)).trigger()
        idle(qtbot, window)
        assert window.state.case.source == sweep_file
    speeds = window.menuBar().findChildren(type(window.actions["close"]))
    for action in [a for a in speeds if a.text().endswith("frames/s")] * 2:  # View > Cine speed
        action.trigger()
        assert action.isChecked()
        assert window.play_timer.interval() == 1000 // int(action.text().split()[0])
    assert window.last_alert == ""
    assert list(answered.glob("out*/*.png")) and list(answered.glob("s*.csv"))  # exports landed
    window.actions["close"].trigger()
    assert not window.isVisible()


def test_export_and_navigation_items_wait_for_a_sweep(window):
    for spec in (a for a in ACTIONS if isinstance(a, Action)):
        assert window.actions[spec.name].isEnabled() == (not spec.needs_case and not spec.needs_scores), spec.name


@pytest.mark.parametrize("shortcut", SHORTCUTS, ids=lambda s: s.keys[0])
def test_every_declared_key_reaches_its_action(qtbot, window, sweep_file, answered, shortcut):
    open_and_score(qtbot, window, sweep_file)
    if shortcut.name in (UNDO, REDO):  # enabled only with a change to undo and one to redo
        state, caliper = window.state, EllipseCaliper(Ellipse((370.0, 280.0), (90.0, 70.0), 0.0), (0.28, 0.28))
        state.change_calipers(state.frame, [caliper], "keep AC 1")
        state.change_calipers(state.frame, [caliper, caliper], "keep AC 2")
        state.undo()
    window.frame_view.setFocus()
    triggered = []
    window.actions[shortcut.name].triggered.connect(lambda *_: triggered.append(True))
    QTest.keySequence(window.frame_view, QKeySequence(shortcut.keys[0]))
    assert triggered, f"{shortcut.keys[0]} did not trigger {shortcut.name}"
    idle(qtbot, window)


def test_navigation_keys_go_where_they_say(qtbot, window, case_file):
    open_and_score(qtbot, window, case_file)
    layout, state = window.state.case.layout, window.state
    window.frame_view.setFocus()
    QTest.keyClick(window.frame_view, Qt.Key.Key_End)
    assert state.frame == layout.image_frames()[-1] and not layout.padding[state.frame]  # not a padding frame
    QTest.keyClick(window.frame_view, Qt.Key.Key_Home)
    assert state.frame == layout.image_frames()[0]
    QTest.keyClick(window.frame_view, Qt.Key.Key_BracketRight)
    assert layout.sweep_of(state.frame).number == 2 and state.frame == layout.image_frames(layout.sweeps[1])[0]
    QTest.keyClick(window.frame_view, Qt.Key.Key_BracketLeft)
    assert layout.sweep_of(state.frame).number == 1
    assert f"Frame {state.frame} [0–{layout.n_frames - 1}]" in window.frame_view.readout.text()


def test_typing_a_threshold_takes_the_whole_number_and_gives_the_keys_back(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    box = window.panel.threshold_box
    for typed, expected in (("0.45", 0.45), ("0.3", 0.3), ("0.875", 0.875)):
        box.setFocus()
        box.selectAll()
        QTest.keyClicks(box, typed)
        QTest.keyClick(box, Qt.Key.Key_Return)
        assert window.state.threshold == pytest.approx(expected) and box.value() == pytest.approx(expected)
        assert window.timeline.threshold_line.value() == pytest.approx(expected)
    assert window.frame_view.hasFocus()  # Enter hands the keys back to the frame
    before = window.state.frame
    QTest.keyClick(window.frame_view, Qt.Key.Key_Right)
    assert window.state.frame == before + 1


def test_typing_window_and_level(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    for box, typed in ((window.panel.window_box, "100"), (window.panel.level_box, "60")):
        box.setFocus()
        box.selectAll()
        QTest.keyClicks(box, typed)
        QTest.keyClick(box, Qt.Key.Key_Return)
    assert window.frame_view.image.levels.tolist() == [10, 110]
    QTest.keyClick(window.frame_view, Qt.Key.Key_R)
    assert window.frame_view.image.levels.tolist() == [0, 255]


def test_a_model_threshold_equal_to_the_start_value_is_shown(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    assert window.state.threshold == 0.5  # the tiny model's own, which equals ViewerState's starting value
    assert window.panel.threshold_box.value() == 0.5 and window.timeline.threshold_line.value() == 0.5


def test_settings_ok_with_nothing_changed_keeps_the_threshold_and_the_scores(qtbot, window, sweep_file, monkeypatch):
    open_and_score(qtbot, window, sweep_file)
    window.state.set_threshold(0.3)
    scorer = window.session.scorer
    monkeypatch.setattr(SettingsDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    window.open_settings()
    assert window.state.threshold == 0.3 and window.session.scorer is scorer


def test_dragging_the_threshold_line_and_the_timeline(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    line = window.timeline.threshold_line
    line.setPos(0.25)  # what a drag of the line does, through pyqtgraph's own signal
    assert window.state.threshold == pytest.approx(0.25) and window.panel.threshold_box.value() == 0.25
    view = window.timeline.plotItem.vb
    viewport = window.timeline.viewport()
    start = window.timeline.mapFromScene(view.mapViewToScene(QPointF(20, 0.6)))
    end = window.timeline.mapFromScene(view.mapViewToScene(QPointF(90, 0.6)))
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 11):
        QTest.mouseMove(viewport, start + (end - start) * step / 10)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    assert abs(window.state.frame - 90) <= 2


def test_best_frame_rows_by_keyboard_and_the_thumbnails(qtbot, window, case_file):
    open_and_score(qtbot, window, case_file)
    scored = window.state.scored
    rows = window.panel.best_frames
    assert rows.count() == len(scored.case.layout.sweeps)
    for row, best in enumerate(scored.best_per_sweep()):  # honest: "none good" where no frame reaches it
        assert ("✔" in rows.item(row).text()) == best.good and ("none good" in rows.item(row).text()) == (not best.good)
    rows.setFocus()
    rows.setCurrentRow(0)
    QTest.keyClick(rows, Qt.Key.Key_Down)
    assert window.state.frame == scored.best_per_sweep()[1].frame
    window.thumbnails.setCurrentRow(3)
    assert window.state.frame == scored.best_per_sweep()[3].frame
    window.state.set_frame(scored.case.layout.sweeps[4].start + 2)
    assert window.thumbnails.currentRow() == 4  # in step with the current frame


def test_exporting_best_frames_marks_those_below_the_threshold(qtbot, window, case_file, answered):
    open_and_score(qtbot, window, case_file)
    window.state.set_threshold(float(np.nanmax(window.state.scores)))  # one sweep good, the others not
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as done:
        window.exporter.export_best()
    report = done.args[0]
    names = sorted(p.name for p in report.written if p.suffix == ".png")
    assert len(names) == len(window.state.case.layout.sweeps)
    assert sum("_below-threshold" in n for n in names) == len(names) - 1
    assert "5 below the threshold" in window.status_text.text()


def test_exporting_a_padding_frame_is_refused_before_asking_for_a_folder(qtbot, window, sweep_file, monkeypatch):
    open_and_score(qtbot, window, sweep_file)
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: asked.append(1) or "")
    window.state.set_frame(int(np.flatnonzero(window.state.case.layout.padding)[0]))
    window.exporter.export_current()
    assert "padding" in window.last_alert and not asked


def test_quick_export_twice_renames_instead_of_refusing(qtbot, window, sweep_file, tmp_path):
    open_and_score(qtbot, window, sweep_file)
    window.settings.export_dir = str(tmp_path / "quick")
    for _ in range(2):
        with qtbot.waitSignal(window.exporter.finished, timeout=60_000):
            window.quick_export()
    assert len(list((tmp_path / "quick").glob("*.png"))) == 2 and window.last_alert == ""
    assert str(tmp_path / "quick") in window.export_folder.text()


def test_a_dicom_series_folder_opens_from_the_menu(qtbot, window, tmp_path, monkeypatch):
    volume = np.random.default_rng(1).integers(1, 255, size=(5, 32, 40), dtype=np.uint8)
    folder = write_dicom_series(tmp_path / "series", volume)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.actions["open_folder_dialog"].trigger()
    assert np.array_equal(window.state.case.frames, volume)
    wait_for_scoring(qtbot, window)


BATCH_SECONDS = 1.5  # the slow model's time a batch: any wait for it on the GUI thread shows as a gap this long


@pytest.fixture
def slow_model(monkeypatch):
    """The tiny model, slowed to a full ViT-L's pace on a laptop: slow enough to switch, cancel and
    export mid-batch. Every engine's `predict`: a case is scored by its engine's view (`for_case`)."""
    predict = Engine.predict
    monkeypatch.setattr(Engine, "predict", lambda engine, frames: (time.sleep(BATCH_SECONDS), predict(engine, frames))[1])


def test_the_window_never_stalls_while_a_slow_model_scores(qtbot, window, sweep_file, short_sweep_file, slow_model,
                                                           tmp_path):
    """A 10 ms timer on the GUI thread: between two ticks the thread may not work more than 100 ms
    (its own CPU time, which another process's load does not inflate), nor wait for a batch (a wall
    clock gap of a second: the 4 s freezes of old were waits for the scoring thread)."""
    gaps, work, last = [], [], [time.monotonic(), time.thread_time()]

    def tick():
        now, cpu = time.monotonic(), time.thread_time()
        gaps.append(now - last[0])
        work.append(cpu - last[1])
        last[:] = now, cpu
    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    window.settings.batch_size = 2
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.open_path(sweep_file)
    last[:] = time.monotonic(), time.thread_time()
    timer.start()
    qtbot.waitUntil(lambda: window.state.scored_count >= 4, timeout=30_000)
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):  # a second file while scoring
        window.open_path(short_sweep_file)
    qtbot.waitUntil(lambda: window.state.scored_count >= 2, timeout=30_000)
    window.exporter.export([int(window.state.case.layout.image_frames()[0])], tmp_path / "during")
    window.cancel_scoring()
    assert "Stopping" in window.status_text.text()
    qtbot.waitUntil(lambda: not window.session.is_scoring and not window.exporter.busy, timeout=30_000)
    timer.stop()
    assert window.state.case.source == short_sweep_file  # no batch of the first file landed on the second
    assert max(work) < 0.1, f"the GUI thread worked {max(work) * 1000:.0f} ms without a break"
    assert max(gaps) < BATCH_SECONDS * 2 / 3, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
    assert list((tmp_path / "during").glob("*.png"))


def test_the_wheel_steps_frames_and_ctrl_wheel_zooms(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    window.state.set_frame(10)
    centre = window.frame_view.rect().center()
    QTest.mouseMove(window.frame_view.viewport(), centre)
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    def wheel(delta, modifiers=Qt.KeyboardModifier.NoModifier):
        event = QWheelEvent(QPointF(centre), QPointF(window.frame_view.mapToGlobal(centre)), QPoint(0, 0),
                            QPoint(0, delta), Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(window.frame_view.viewport(), event)
    wheel(-120)
    assert window.state.frame == 11
    wheel(240)
    assert window.state.frame == 9
    before = window.frame_view.view.viewRange()
    wheel(120, Qt.KeyboardModifier.ControlModifier)
    assert window.state.frame == 9 and window.frame_view.view.viewRange() != before


def test_dropping_a_file_opens_it(qtbot, window, sweep_file):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(sweep_file))])
    buttons, keys = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, data, buttons, keys)
    assert QApplication.sendEvent(window, enter) and enter.isAccepted()
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        QApplication.sendEvent(window, QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, data, buttons, keys))
    assert window.state.case.source == sweep_file
    wait_for_scoring(qtbot, window)


def test_a_model_that_fails_to_load_says_so_and_keeps_the_sweep(qtbot, window, sweep_file, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    window.settings.adapter = str(broken)
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.open_path(sweep_file)
    qtbot.waitUntil(lambda: "broken.safetensors" in window.last_alert, timeout=30_000)
    assert window.state.case.source == sweep_file and window.state.model is None
    wait_for_scoring(qtbot, window)
    assert not window.actions["exporter.export_best"].isEnabled()  # nothing scored: nothing to export


def test_reopening_a_scored_sweep_shows_its_scores_from_the_cache(qtbot, window, sweep_file, slow_model):
    open_and_score(qtbot, window, sweep_file)  # slow, but the tiny model and 2 batches: a few seconds
    first = window.state.scores.copy()
    with qtbot.waitSignal(window.state.model_changed, timeout=30_000):
        window.open_path(sweep_file)
    np.testing.assert_array_equal(window.state.scores, first)  # at once: before any batch
    wait_for_scoring(qtbot, window)


def test_the_app_starts_with_a_sweep_argument(qtbot, sweep_file, monkeypatch, tiny_cls_path):
    from PySide6.QtWidgets import QApplication

    from fetal_iqa_gui.gui import app
    windows = []
    monkeypatch.setattr(QApplication, "exec", lambda self=None: 0)
    monkeypatch.setattr(stored, "load_settings", lambda: stored.AppSettings(adapter=str(tiny_cls_path), device="cpu",
                                                                           precision="fp32"))
    from fetal_iqa_gui.gui import main_window
    original = main_window.MainWindow

    class Recorded(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            windows.append(self)
    monkeypatch.setattr(main_window, "MainWindow", Recorded)
    assert app.run(case=sweep_file) == 0
    window = windows[0]
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.state.case is not None, timeout=30_000)
    assert window.state.case.source == sweep_file and window.isVisible()
    wait_for_scoring(qtbot, window)
    window.close()


def test_a_backend_this_computer_lacks_is_told_and_a_damaged_choice_is_forgotten(qtbot, window, sweep_file,
                                                                                  monkeypatch):
    from fetal_iqa_gui.engine import choice
    open_and_score(qtbot, window, sweep_file)
    monkeypatch.setattr(choice, "installed", lambda name: name != "openvino")

    def choose(dialog):  # Settings: Backend openvino, a calibration sweep typed in
        dialog.backend.setCurrentText("openvino")
        dialog.calibration.setText(f"  {sweep_file}  ")
        return QDialog.DialogCode.Accepted
    monkeypatch.setattr(SettingsDialog, "exec", choose)
    window.open_settings()
    idle(qtbot, window)
    assert "openvino is not installed" in window.last_alert and "pip install" in window.last_alert
    assert "Traceback" not in window.last_alert and window.isVisible()
    settings = window.session.engine_settings()
    assert (settings.backend, settings.calibration) == ("openvino", str(sweep_file))
    assert stored.load_settings().backend == "openvino"
    stored.settings_store().setValue(f"{stored.VERSION}/backend", "tensorrt")  # an older or damaged settings file
    assert stored.load_settings().backend == "auto"


def test_while_the_model_converts_the_window_says_so_and_shows_no_threshold_yet(qtbot, window, sweep_file,
                                                                                monkeypatch):
    """A compiled backend's first start converts the model (minutes for ViT-L/14), in the scoring thread."""
    from fetal_iqa_gui.engine import compiled as runtime
    real, release = workers.warm_engine, threading.Event()

    def converting(spec, settings, case=None, notify=None):
        notify(runtime.CONVERTING)
        release.wait(30)
        return real(spec, settings, case)
    monkeypatch.setattr(workers, "warm_engine", converting)
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.open_path(sweep_file)
    qtbot.waitUntil(lambda: "Converting the model for this CPU" in window.status_text.text(), timeout=30_000)
    box = window.panel.threshold_box
    assert box.text() == "–" and not box.isEnabled() and not window.timeline.threshold_line.isVisible()
    release.set()
    wait_for_scoring(qtbot, window)
    assert box.isEnabled() and box.value() == window.state.threshold == 0.5 and box.text() == "0.500"
    assert window.timeline.threshold_line.isVisible() and window.timeline.threshold_line.value() == 0.5


def choose_in_settings(monkeypatch, window, **changes):
    """The Settings dialog, answered OK with `changes` made."""
    import dataclasses
    chosen = dataclasses.replace(window.settings, **changes)
    monkeypatch.setattr(SettingsDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(SettingsDialog, "result_settings", lambda self: chosen)


def test_a_threshold_typed_for_one_kind_of_model_never_judges_the_other(qtbot, window, short_sweep_file,
                                                                        tiny_seg_path, monkeypatch):
    """A CLS probability and a SEG model's share of the frame are different quantities."""
    open_and_score(qtbot, window, short_sweep_file)
    window.state.set_threshold(0.3)
    choose_in_settings(monkeypatch, window, adapter=str(tiny_seg_path))
    window.open_settings()
    wait_for_scoring(qtbot, window, timeout=180_000)
    assert window.state.model.is_segmentation and window.state.threshold == pytest.approx(0.01)  # its own
    assert window.panel.threshold_box.value() == pytest.approx(0.01)
    window.state.set_threshold(0.02)
    choose_in_settings(monkeypatch, window, batch_size=4)  # the same model, run otherwise: the user's stays
    window.open_settings()
    wait_for_scoring(qtbot, window, timeout=180_000)
    assert window.state.threshold == pytest.approx(0.02)


def test_changing_the_precision_keeps_the_demo_segmentation_model(qtbot, window, short_sweep_file, monkeypatch):
    monkeypatch.setattr(workers, "demo_case_path", lambda: short_sweep_file)  # 30 frames, not the demo's 840
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.actions["open_demo_segmented"].trigger()
    wait_for_scoring(qtbot, window, timeout=180_000)
    assert window.state.model.is_demo and window.state.model.is_segmentation
    choose_in_settings(monkeypatch, window, precision="int8")
    window.open_settings()
    wait_for_scoring(qtbot, window, timeout=180_000)
    assert window.state.model.is_demo and window.state.model.is_segmentation  # not the settings' demo model
    assert window.session.engine.precision == "int8"


def test_the_window_scores_with_the_adapter_the_readme_says_to_put_in_the_user_model_folder(window, tmp_path,
                                                                                            monkeypatch):
    from fetal_iqa_gui.base.resources import FETALCLIP_WEIGHTS_NAME, user_weights_dir
    from fetal_iqa_gui.model.spec import choose_model
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = user_weights_dir()
    folder.mkdir(parents=True)
    (folder / FETALCLIP_WEIGHTS_NAME).write_bytes(b"weights")
    (folder / "mine.safetensors").write_bytes(b"adapter")
    window.settings.adapter = ""  # nothing named in Settings
    spec = window.session.model_spec()
    assert spec.adapter == folder / "mine.safetensors" and spec == choose_model()  # as `fetal-iqa score` chooses
