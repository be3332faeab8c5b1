"""GUI test fixtures: a main window on a tiny test model (fast) and a small synthetic sweep file.

Every QThread the tests start is recorded (and, under coverage, traced); a test that leaves
one running fails.
"""

import gc
import sys
import threading

import pytest
import shiboken6
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.gui import settings as stored

_started_threads: list[QThread] = []
_qthread_start = QThread.start


def _recording_start(self, *args):
    """Record the thread, and hand it the tracer that `threading` gives new Python threads:
    QThreads are not Python threads, so coverage (concurrency = thread) would not see them."""
    _started_threads.append(self)
    trace = threading.gettrace()
    if trace is not None and "run" not in vars(self):
        run = self.run

        def traced_run():
            sys.settrace(trace)
            return run()

        self.run = traced_run  # PySide calls the instance's run, so this covers every subclass
    return _qthread_start(self, *args)


QThread.start = _recording_start


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail a test that leaves a QThread running once its windows are closed (pytest-qt closes
    them before fixtures are torn down): such a thread would act on the next test's state."""
    _started_threads.clear()
    yield
    running = []
    for thread in _started_threads:
        if shiboken6.isValid(thread) and not thread.wait(5000):  # a deleted QThread has finished
            running.append(type(thread).__name__)
    _started_threads.clear()
    assert not running, f"QThreads still running after the test: {running}"
    # the closed windows' Python wrappers collected here, once Qt has deleted their objects, not at
    # a random allocation of a later test: CI crashed (SIGSEGV) inside a QGraphicsObject's
    # constructor while placing a caliper, three runs of three, never in a shorter run
    QApplication.processEvents()
    gc.collect()


@pytest.fixture(scope="session")
def sweep_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gui-data")
    synthetic.write_dataset(folder, cases=1, seed=21, frames_per_sweep=40)
    return next((folder / synthetic.IMAGES_DIR).glob("*.mha"))


@pytest.fixture(scope="session")
def case_file(tmp_path_factory):
    """A case of the challenge's shape: 6 sweeps of 140 frames, with padding."""
    folder = tmp_path_factory.mktemp("gui-case")
    synthetic.write_dataset(folder, cases=1, seed=23)
    return next((folder / synthetic.IMAGES_DIR).glob("*.mha"))


@pytest.fixture(scope="session")
def short_sweep_file(tmp_path_factory):
    """One short sweep, for the slower segmentation model."""
    folder = tmp_path_factory.mktemp("gui-short")
    synthetic.write_dataset(folder, cases=1, seed=22, frames_per_sweep=30, sweeps=1)
    return next((folder / synthetic.IMAGES_DIR).glob("*.mha"))


@pytest.fixture
def window(qtbot, tiny_cls_path, tmp_path, monkeypatch):
    monkeypatch.setenv("FETAL_IQA_CACHE_DIR", str(tmp_path / "score-cache"))  # each test scores afresh
    monkeypatch.setenv("FETAL_IQA_OUTBOX", str(tmp_path / "outbox"))  # nothing queued by another test
    from fetal_iqa_gui.gui.main_window import MainWindow
    settings = stored.AppSettings(adapter=str(tiny_cls_path), device="cpu", precision="fp32", batch_size=8)
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    return window
