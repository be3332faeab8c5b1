"""Heat maps: they point at the abdomen on synthetic good frames, lie on the frame's own pixels,
are computed once per frame, and come from an fp32 model whatever engine scores."""

import numpy as np
import pytest
import torch

from fetal_iqa_gui.case.synthetic import make_case
from fetal_iqa_gui.engine import explain
from fetal_iqa_gui.engine.choice import EngineSettings
from fetal_iqa_gui.engine.preprocess import frames_to_tensor, square_resize
from fetal_iqa_gui.engine.scoring import make_engine
from fetal_iqa_gui.model.loading import load_model
from fetal_iqa_gui.model.spec import ModelSpec

# Four cases of six 60-frame sweeps: 140 annotated frames, not those the map's smoothing was chosen on
# (explain.SMOOTHING_PATCHES; the benchmark's 12 cases). Measured on them (attention rollout): 93 % of
# peaks inside the abdomen, 100 % within half a patch; Grad-CAM's: 46 % inside. Unsmoothed: 79 % and
# 98 %. The README has the benchmark's figures.
POINTING_SEEDS = (100, 101, 102, 103)


@pytest.fixture(scope="module")
def demo():
    return load_model(ModelSpec.demo_model("classification"))


@pytest.fixture(scope="module")
def good_frames():
    frames, masks = [], []
    for seed in POINTING_SEEDS:
        case = make_case(seed, frames_per_sweep=60)
        annotated = np.flatnonzero(case.masks.reshape(len(case.masks), -1).any(1))
        frames.append(case.frames[annotated])
        masks.append(case.masks[annotated])
    return np.concatenate(frames), np.concatenate(masks)


def test_the_default_heat_map_points_at_the_abdomen_on_good_frames(demo, good_frames):
    frames, masks = good_frames
    assert len(frames) >= 100
    inside, near = explain.pointing_game(demo.module, frames, masks, explain.DEFAULT_METHOD)
    assert near >= 0.95, f"the peak lies within half a patch of the abdomen in only {100 * near:.0f} % of good frames"
    assert inside >= 0.9, f"the peak lies inside the abdomen in only {100 * inside:.0f} % of good frames"
    grad_cam_inside, _ = explain.pointing_game(demo.module, frames, masks, explain.GRAD_CAM)
    assert inside > grad_cam_inside + 0.1  # the default is the method that tracks the abdomen better


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)], ids=["wide", "tall"])
def test_a_patch_of_the_map_lies_where_its_pixels_were_in_the_frame(shape):
    """Through the preprocessing's padding and resize and back: the patch that holds a bright spot of a
    non-square frame lights the map over that spot."""
    frame = np.zeros(shape, np.uint8)
    spot_y, spot_x = shape[0] * 3 // 4 + 5, shape[1] // 5  # + 5: off a patch's edge
    frame[spot_y - 6:spot_y + 6, spot_x - 6:spot_x + 6] = 255
    model_input = square_resize(frame)  # what the model sees, 224 x 224
    grid = np.zeros((16, 16), np.float32)
    rows, cols = np.nonzero(model_input > 128)
    grid[int(rows.mean()) // 14, int(cols.mean()) // 14] = 1.0  # the spot's patch: FetalCLIP's are 14 pixels
    mapped = explain.to_frame(grid, shape)
    assert mapped.shape == shape
    peak_y, peak_x = np.unravel_index(np.argmax(mapped), shape)
    reach = max(shape) / 16 / 2 + 1  # the peak is its patch's centre; the spot's centre is in that patch
    assert abs(peak_y - spot_y) <= reach and abs(peak_x - spot_x) <= reach


def test_a_heat_map_covers_the_frame_and_explains_the_models_own_score(demo):
    frame = make_case(5, frames_per_sweep=20, sweeps=1).frames[8][40:, :700]  # cropped: not 744 x 562
    for method in explain.METHODS:
        heat = explain.explain(demo.module, frame, method)
        assert heat.values.shape == frame.shape and heat.values.dtype == np.float32
        assert heat.values.min() >= 0 and heat.values.max() <= 1  # Grad-CAM's may be 0: nothing raised the score
        with torch.no_grad():
            logit = float(demo.module(frames_to_tensor(frame[None]))[0])
        assert heat.logit == pytest.approx(logit, abs=1e-4)
        assert heat.description == explain.DESCRIPTIONS[method]
    assert heat.values.max() > 0.5  # rollout's: some patch always draws the attention


def test_each_frame_is_explained_once(demo, monkeypatch):
    frames = make_case(5, frames_per_sweep=20, sweeps=1).frames[[6, 8]]
    explainer = explain.Explainer(demo.module)
    calls = []
    real = explain.explain
    monkeypatch.setattr(explain, "explain", lambda *args: calls.append(1) or real(*args))
    first = explainer.heat_map("case", 6, frames[0])
    assert explainer.heat_map("case", 6, frames[0]) is first and explainer.cached("case", 6) is first
    assert explainer.cached("case", 8) is None and explainer.cached("other", 6) is None
    explainer.heat_map("case", 8, frames[1])
    assert len(calls) == 2


def test_the_overlay_hides_nothing_where_the_model_did_not_look():
    values = np.zeros((4, 6), np.float32)
    values[1, 2] = 1.0
    rgba = explain.overlay_colours(values)
    assert rgba.shape == (4, 6, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0, 3] == 0 and rgba[1, 2, 3] == round(255 * explain.OVERLAY_OPACITY)
    assert (explain.HeatMap(values, explain.ROLLOUT, 0.0).colours == rgba).all()


def test_an_int8_engine_explains_with_an_fp32_copy_and_an_fp32_one_with_its_own(monkeypatch):
    from fetal_iqa_gui.engine import agreement
    monkeypatch.setattr(agreement, "needs_check", lambda *args: False)
    fp32 = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "fp32", 8, backend="torch"))
    assert explain.fp32_module(fp32) is fp32.model.module
    int8 = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "int8", 8, backend="torch"))
    module = explain.fp32_module(int8)
    assert module is not int8.model.module
    assert all(p.dtype == torch.float32 for p in module.parameters())
    frame = make_case(5, frames_per_sweep=20, sweeps=1).frames[8]
    assert np.allclose(explain.explain(module, frame).values, explain.explain(fp32.model.module, frame).values,
                       atol=1e-5)
