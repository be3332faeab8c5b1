"""What the window says is so: a sweep's verdict before it is fully scored, a save that failed, the
threshold's label and field, Open Recent and the export folder."""

import re

import numpy as np
from PySide6.QtCore import Qt

from tests.gui.support import open_and_score, type_into, wait_for_scoring


def test_a_partly_scored_sweep_says_none_good_yet_and_how_much_is_scored(qtbot, window, sweep_file):
    window.settings.batch_size = 1
    with qtbot.waitSignal(window.state.model_changed, timeout=60_000):
        window.open_path(sweep_file)
    type_into(qtbot, window.panel.threshold_box, "1")  # no frame is good: each row must say how far it got
    qtbot.waitUntil(lambda: window.state.scored_count >= 4, timeout=60_000)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    wait_for_scoring(qtbot, window)
    layout, scores = window.state.case.layout, window.state.scores
    assert window.state.scored.n_pending > 0  # stopped part way
    rows, partly = window.panel.best_frames, 0
    for row, sweep in enumerate(layout.sweeps):
        text, thumbnail = rows.item(row).text(), window.thumbnails.item(row).text()
        frames = layout.image_frames(sweep)
        scored = int(np.count_nonzero(~np.isnan(scores[frames])))
        assert "none good (" not in text and "✘" not in text and "✘" not in thumbnail
        if scored == 0:
            assert "not scored yet" in text
            continue
        partly += 1
        said = re.search(r"none good yet \((\d+) % scored\)", text)
        assert said and int(said.group(1)) == 100 * scored // len(frames), text
        assert "◔" in thumbnail and "none good yet" in window.thumbnails.item(row).toolTip()
    assert partly >= 1


def test_the_timeline_labels_the_threshold_it_draws(qtbot, window, sweep_file):
    open_and_score(qtbot, window, sweep_file)
    label = window.timeline.threshold_line.label
    assert label.isVisible() and label.toPlainText() == "threshold 0.500"  # the model's own, not 0.000
    type_into(qtbot, window.panel.threshold_box, "0.3")
    assert label.toPlainText() == "threshold 0.300"
