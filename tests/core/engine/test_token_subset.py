"""A CLS model skips the patches a sweep leaves black in every frame: the same model on the rest,
trusted only where it keeps fp32's decisions on the sweep's own frames."""

import numpy as np
import pytest
import torch

from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.engine import choice, tokens
from fetal_iqa_gui.engine.cache import compiled_dir
from fetal_iqa_gui.engine.compiled import CompiledModel
from fetal_iqa_gui.engine.choice import EngineSettings
from fetal_iqa_gui.engine.preprocess import resize_frames
from fetal_iqa_gui.engine.scoring import load_engine, score_case
from fetal_iqa_gui.model.checkpoint import build_model
from fetal_iqa_gui.model.networks import embeds, pool, tower_of
from fetal_iqa_gui.model.spec import ModelSpec
from fetal_iqa_gui.model.token_subset import SubsetTower, kept_tokens, on_subset
from tests.support import TINY_CONFIG

FP32 = EngineSettings("cpu", "fp32", 8, backend="torch", black_patches="skip")  # skipping (opt-in)
KEEP_ALL = EngineSettings("cpu", "fp32", 8, backend="torch", black_patches="keep")


@pytest.fixture(scope="module")
def fan_case():
    """A synthetic case of the real frame size and fan, whose subset keeps the demo model's decisions."""
    return Case.from_array(synthetic.make_case(seed=5, frames_per_sweep=24).frames)


@pytest.mark.parametrize("pooling", ["tok", "avg"])
def test_with_every_token_kept_the_subset_is_the_tower(pooling):
    torch.manual_seed(0)
    config = {**TINY_CONFIG, "vision_cfg": {**TINY_CONFIG["vision_cfg"], "pool_type": pooling}}
    model = build_model("classification", config).eval()
    tower = tower_of(model.encoder)
    images = torch.randn(3, 3, 224, 224)
    every = kept_tokens(np.array([], int), tower.grid_size)
    with torch.inference_mode():
        assert torch.allclose(SubsetTower(tower, every)(images), tower(images), atol=1e-5)
        assert torch.allclose(on_subset(model, every)(images), model(images), atol=1e-5)


@pytest.mark.parametrize("pooling", ["tok", "avg"])
def test_open_clips_floor_without_embeds_and_pool_gives_the_same_tokens_and_pooling(pooling, monkeypatch):
    """open_clip 2.26.1 (the floor) has neither `_embeds` nor `_pool`: the steps written out match them."""
    torch.manual_seed(0)
    config = {**TINY_CONFIG, "vision_cfg": {**TINY_CONFIG["vision_cfg"], "pool_type": pooling}}
    tower = tower_of(build_model("classification", config).eval().encoder)
    images = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        if not hasattr(tower, "_embeds"):
            pytest.skip("this open_clip has no _embeds to compare with")
        tokens_now = embeds(tower, images)
        pooled_now = pool(tower, tokens_now)
        monkeypatch.delattr(type(tower), "_embeds")
        monkeypatch.delattr(type(tower), "_pool")
        assert torch.allclose(embeds(tower, images), tokens_now)
        assert all(torch.allclose(a, b) for a, b in zip(pool(tower, tokens_now), pooled_now))


def test_the_patches_outside_the_fan_are_dropped_and_none_with_content(fan_case):
    black = tokens.black_patch_indices(fan_case, (14, 14))
    assert 90 <= len(black) <= 120  # of 256: ViT-L/14's patches outside the probe's view (106 on real sweeps)
    resized = resize_frames(fan_case.frames[fan_case.layout.image_frames()])
    patches = resized.reshape(len(resized), 16, 14, 16, 14).max(axis=(0, 2, 4)).reshape(-1)
    assert (patches[black] == 0).all() and (np.delete(patches, black) > 0).all()
    assert kept_tokens(black, (16, 16))[0] == 0 and len(kept_tokens(black, (16, 16))) == 257 - len(black)


def scored(engine, case):
    """Every image frame's score, by frame (NaN for padding)."""
    scores = np.full(case.n_frames, np.nan)
    for batch in score_case(engine, case):
        scores[batch.frames] = batch.scores
    return scores


def test_the_demo_model_skipping_black_patches_keeps_fp32s_decisions_and_best_frame(fan_case):
    skipping = load_engine(ModelSpec(demo="classification"), FP32)
    every = load_engine(ModelSpec(demo="classification"), KEEP_ALL)
    scores, reference = scored(skipping, fan_case), scored(every, fan_case)
    subset = skipping.for_case(fan_case).subset
    assert subset is not None and subset.dropped > 50  # it does skip them
    assert every.for_case(fan_case).subset is None
    assert skipping.for_case(fan_case).description == f"CPU fp32 ({subset.dropped} black patches skipped)"  # said
    assert skipping.for_case(fan_case).variant.startswith(every.variant + "-tokens")  # cached apart
    images = fan_case.layout.image_frames()
    threshold = skipping.model.threshold
    assert np.mean((scores[images] >= threshold) == (reference[images] >= threshold)) >= 0.97
    assert np.nanargmax(scores) == np.nanargmax(reference)


def test_a_subset_that_changes_the_decisions_is_not_used_and_the_user_is_told(fan_case, monkeypatch):
    monkeypatch.setattr(tokens, "agrees", lambda model, reference, candidate: (0.9, False))
    engine = load_engine(ModelSpec(demo="classification"), FP32)
    first = next(score_case(engine, fan_case))
    assert engine.for_case(fan_case).subset is None and engine.for_case(fan_case).variant == "cpu-fp32-torch"
    assert "scoring with every patch" in first.notice
    remembered = [key for key in tokens._read_checks() if key.startswith(engine.model.identity)]
    assert len(remembered) == 1  # on disk: the next start does not check again
    tokens._verdicts.clear()
    monkeypatch.setattr(tokens, "check", lambda *args: pytest.fail("checked again"))
    again = load_engine(ModelSpec(demo="classification"), FP32)
    assert again.for_case(fan_case).subset is None


def test_a_segmentation_model_keeps_every_token(fan_case):
    engine = load_engine(ModelSpec(demo="segmentation"), FP32)
    assert engine.patches is None and engine.for_case(fan_case) is engine


@pytest.mark.slow
@pytest.mark.skipif(not choice.installed("openvino"), reason="openvino is not installed")
def test_openvino_int8_converts_the_subset_once_and_keeps_fp32s_decisions(fan_case, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    settings = EngineSettings("cpu", "int8", 4, backend="openvino", black_patches="skip")
    engine = load_engine(ModelSpec(demo="classification"), settings)
    every = load_engine(ModelSpec(demo="classification"), KEEP_ALL)
    scores, reference = scored(engine, fan_case), scored(every, fan_case)
    view = engine.for_case(fan_case)
    assert view.subset is not None and view.subset.dropped > 50
    assert isinstance(view.subset.run, CompiledModel) and view.variant.endswith(f"-tokens{view.subset.name}")
    assert view.description == f"CPU int8 (openvino; {view.subset.dropped} black patches skipped)"
    images = fan_case.layout.image_frames()
    threshold = engine.model.threshold
    assert np.mean((scores[images] >= threshold) == (reference[images] >= threshold)) >= 0.97
    assert np.nanargmax(scores) == np.nanargmax(reference)
    entries = sorted(p.name for p in compiled_dir().iterdir() if p.is_dir())
    assert len(entries) == 2  # every token (for the check's fp32 reference too), and the subset
    again = load_engine(ModelSpec(demo="classification"), settings)
    tokens._verdicts.clear()
    assert again.for_case(fan_case).subset is not None  # from the disk: nothing converted again
    assert sorted(p.name for p in compiled_dir().iterdir() if p.is_dir()) == entries
