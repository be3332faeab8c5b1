"""The scoring engine: every image frame once, padding skipped, coarse to fine, order-independent."""

import numpy as np
import pytest
import torch

from fetal_iqa_gui.base.errors import ScoringError
from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.engine import cache
from fetal_iqa_gui.engine.choice import MEASURED, EngineSettings, pick_precision
from fetal_iqa_gui.engine.scoring import make_engine, score_case, scoring_order_step
from fetal_iqa_gui.model.loading import ModelSpec, load_model
from fetal_iqa_gui.runs.job import CaseJob


@pytest.fixture(scope="module")
def sweep(small_case):
    return Case.from_array(small_case.frames, "/virtual/case.mha")


@pytest.fixture(scope="module")
def engine(tiny_cls_path):
    return make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 8, backend="torch"))


def test_every_image_frame_is_scored_once_and_padding_never(engine, sweep):
    seen = []
    for batch in score_case(engine, sweep):
        assert len(batch.frames) == len(batch.scores) <= engine.batch_size
        seen += batch.frames.tolist()
    assert sorted(seen) == sweep.layout.image_frames().tolist()
    assert len(seen) == len(set(seen))


def test_order_is_coarse_to_fine_first(engine, sweep):
    batches = list(score_case(engine, sweep))
    images = sweep.layout.image_frames()
    first = np.concatenate([b.frames for b in batches])[:len(images[::16])]
    assert sorted(first.tolist()) == images[::16].tolist()


def test_final_scores_do_not_depend_on_the_order(engine, sweep):
    ordered = np.full(sweep.n_frames, np.nan, np.float32)
    for batch in score_case(engine, sweep):
        ordered[batch.frames] = batch.scores
    images = sweep.layout.image_frames()
    on_its_tokens = engine.for_case(sweep)  # as score_case scores it (black patches skipped)
    with torch.inference_mode():
        sequential = np.concatenate([on_its_tokens.predict(sweep.frames[images[i:i + 5]])[0]
                                     for i in range(0, len(images), 5)])
    np.testing.assert_allclose(ordered[images], sequential, atol=1e-5)


def test_refinement_starts_next_to_the_highest_score():
    scores = np.full(100, np.nan, np.float32)
    scores[[0, 16, 32, 48, 64, 80]] = [0.1, 0.1, 0.9, 0.1, 0.1, 0.1]
    candidates = np.flatnonzero(np.isnan(scores))
    chosen = scoring_order_step(scores, candidates, 4)
    assert len(chosen) == 4 and all(17 <= f <= 47 for f in chosen)  # beside frame 32's 0.9
    assert {24, 40} <= set(chosen)  # and first the middle of each gap, the frames farthest from any score


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test starts with an empty score cache of its own."""
    monkeypatch.setenv("FETAL_IQA_CACHE_DIR", str(tmp_path / "score-cache"))


def score_all(engine, case, on_batch=None, should_stop=None):
    """Score a case as every front door does: one CaseJob, from what the cache holds."""
    return CaseJob(engine, case).run(on_batch=on_batch, should_stop=should_stop).scored


def test_cancelling_keeps_the_scores_so_far_in_the_cache(engine, sweep):
    batches = []
    result = score_all(engine, sweep, on_batch=lambda batch, scored: batches.append(batch),
                       should_stop=lambda: len(batches) >= 2)
    scored = int((~np.isnan(result.scores)).sum())
    assert scored == sum(len(b.frames) for b in batches) < len(sweep.layout.image_frames())
    variant = engine.for_case(sweep).variant  # names the case's token subset
    cached = cache.load_scores(sweep.content_hash, engine.model.identity, sweep.n_frames, variant)
    assert cached is not None and int((~np.isnan(cached[0])).sum()) == scored
    resumed = score_all(engine, sweep)
    assert not np.isnan(resumed.scores[sweep.layout.image_frames()]).any()


def test_corrupt_cache_entries_are_ignored(engine, sweep):
    score_all(engine, sweep)
    assert len(list(cache.cache_dir().glob("*.npz"))) == 1
    for entry in cache.cache_dir().glob("*.npz"):
        entry.write_bytes(b"garbage")
    variant = engine.for_case(sweep).variant
    assert cache.load_scores(sweep.content_hash, engine.model.identity, sweep.n_frames, variant) is None
    assert not any(cache.cache_dir().glob("*.npz"))  # the damaged entry is gone


def test_cpu_precision_is_measured_unless_named():
    assert pick_precision("auto", torch.device("cpu")) == MEASURED  # a CPU's flags do not say what is fast
    assert pick_precision("fp32", torch.device("cpu")) == "fp32"


def test_int8_engine_stays_close_to_fp32(tiny_cls_path, sweep, monkeypatch):
    # the layers themselves, not whether int8 passes the check (random weights: scores near the threshold)
    monkeypatch.setattr("fetal_iqa_gui.engine.agreement.needs_check", lambda *a: False)
    frames = sweep.frames[sweep.layout.image_frames()[::2]]
    fp32 = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 8, backend="torch"))
    int8 = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "int8", 8, backend="torch"))
    assert int8.description == "CPU int8"
    reference, quantized = fp32.predict(frames)[0], int8.predict(frames)[0]
    # random weights amplify rounding (0.96 correlation, 0.05 mean difference); a wrong conversion scrambles the
    # order (the demo model's test holds trained weights to fp32's decisions)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert np.corrcoef(logit(reference), logit(quantized))[0, 1] > 0.9 and np.abs(reference - quantized).mean() < 0.1
    tower = int8.model.module.encoder
    assert not any(isinstance(m, (torch.nn.MultiheadAttention, torch.nn.Linear)) for m in tower.modules())


def test_int8_demo_model_keeps_fp32_decisions_and_best_frame(sweep):
    """The issue's agreement rule, on trained weights (random ones say little about int8 error)."""
    frames = sweep.frames[sweep.layout.image_frames()]
    fp32 = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "fp32", 16, backend="torch"))
    int8 = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "int8", 16, backend="torch"))
    reference, quantized = fp32.predict(frames)[0], int8.predict(frames)[0]
    threshold = fp32.model.threshold
    assert np.mean((reference >= threshold) == (quantized >= threshold)) >= 0.995
    assert np.argmax(reference) == np.argmax(quantized)


@pytest.mark.parametrize("batch_first", [True, False])
def test_int8_attention_computes_what_multihead_attention_does(batch_first):
    from fetal_iqa_gui.engine.int8 import Int8Attention
    torch.manual_seed(0)
    attention = torch.nn.MultiheadAttention(64, 4, batch_first=batch_first).eval()
    x = torch.randn(3, 10, 64) if batch_first else torch.randn(10, 3, 64)
    with torch.inference_mode():
        expected = attention(x, x, x, need_weights=False)[0]
        actual = Int8Attention(attention)(x, x, x, need_weights=False)[0]
    assert actual.shape == expected.shape
    # int8 rounding costs a few per cent; a wrong head split or projection would cost ~100 %
    assert (actual - expected).abs().max() < 0.05 * expected.abs().max()


def test_missing_gpu_is_a_clear_error(tiny_cls_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ScoringError, match="no CUDA GPU"):
        make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cuda"))


def test_segmentation_model_yields_masks_and_area_scores(tiny_seg_path, sweep):
    engine = make_engine(load_model(ModelSpec(adapter=tiny_seg_path)), EngineSettings("cpu", "fp32", 8, backend="torch"))
    batch = next(score_case(engine, sweep))
    assert batch.masks.shape == (len(batch.frames), 224, 224)
    np.testing.assert_allclose(batch.scores, batch.masks.reshape(len(batch.masks), -1).mean(axis=1))
    assert engine.model.threshold == pytest.approx(0.01)
