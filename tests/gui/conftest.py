"""GUI test fixtures: a main window on a tiny test model (fast) and a small synthetic sweep file."""

import pytest

from fetal_iqa_gui import synthetic
from fetal_iqa_gui.gui import settings as stored


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
    from fetal_iqa_gui.gui.main_window import MainWindow
    settings = stored.AppSettings(adapter=str(tiny_cls_path), device="cpu", precision="fp32", batch_size=8)
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    return window


def open_and_score(qtbot, window, path, timeout=60_000):
    with qtbot.waitSignal(window.state.sweep_changed, timeout=timeout):
        window.open_path(path)
    wait_for_scoring(qtbot, window, timeout)


def wait_for_scoring(qtbot, window, timeout=60_000):
    """Until the scoring thread has finished and its last signals have been handled."""
    qtbot.waitUntil(lambda: window.session.scorer is not None and window.session.scorer.isFinished()
                    and not window.session.is_scoring and window.progress.isHidden(), timeout=timeout)


def export_and_wait(qtbot, window, frames, folder):
    """Export through the window's exporter (a worker thread) and return its report."""
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as done:
        window.exporter.export(frames, folder)
    return done.args[0]
