"""The shipped demo segmentation model in the window, as File > Open the demo sweep with the demo
segmentation model gives it: a labelled demo, masks on the abdomen's frames, and its ellipse
proposed as the caliper with the AC of the true abdomen."""

import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.gui import workers
from fetal_iqa_gui.case.measure import measure_abdomen
from tests.gui.support import wait_for_scoring


def test_the_segmentation_demo_proposes_the_abdomens_ellipse(qtbot, window, sweep_file, monkeypatch):
    monkeypatch.setattr(workers, "demo_case_path", lambda: sweep_file)  # 240 frames, not the demo's 840
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(sweep_file.parents[2] / synthetic.MASKS_DIR / sweep_file.name)))
    with qtbot.waitSignal(window.state.case_changed, timeout=30_000):
        window.actions["open_demo_segmented"].trigger()
    wait_for_scoring(qtbot, window, timeout=240_000)
    model = window.state.model
    assert model.is_demo and model.is_segmentation
    assert "Demo" in window.banner.text() and not window.banner.isHidden()
    scored = window.state.scored
    good = scored.scores >= scored.threshold  # enough mask to measure
    annotated = truth.reshape(len(truth), -1).any(1)
    assert (good == annotated).mean() >= 0.9  # where the abdomen is measurable, and not elsewhere
    low, high = window.timeline.getViewBox().viewRange()[1]  # the areas fill the axis, not its bottom 6 %
    largest = np.nanmax(scored.scores)
    assert low == 0 and largest < high < 3 * largest
    assert window.timeline.getAxis("left").labelText == "area" and not window.timeline.getAxis("left").autoSIPrefix
    frame = scored.challenge_choice()
    assert annotated[frame]
    window.state.set_frame(frame)
    window.calipers.start_ellipse()  # C: the model's ellipse, proposed
    proposed_ac = window.calipers.proposal[1]
    true_ac = measure_abdomen(truth[frame] > 0, 0.28).ac_mm
    assert proposed_ac == pytest.approx(true_ac, rel=0.1)
    assert f"{proposed_ac:.1f} mm" in window.status_text.text()
    window.calipers.accept()
    (kept,) = scored.calipers[frame]
    assert kept.by == "model" and kept.ac_mm == pytest.approx(proposed_ac, rel=1e-6)
