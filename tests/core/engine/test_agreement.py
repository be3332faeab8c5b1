"""A fast path keeps fp32's decisions and best frame (a segmentation model's: its masks and AC) on the
user's frames, or fp32 scores and the user is told why (ONNX Runtime's int8 halved the paper's SEG
model's AC)."""

import numpy as np
import pytest
import torch

from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.engine import agreement, choice, scoring
from fetal_iqa_gui.engine.choice import EngineSettings
from fetal_iqa_gui.engine.compiled import CompiledModel
from fetal_iqa_gui.engine.preprocess import frames_to_tensor
from fetal_iqa_gui.engine.scoring import make_engine, score_case
from fetal_iqa_gui.model.loading import load_model
from fetal_iqa_gui.model.spec import ModelSpec


def disc_logits(radii, size=224):
    """Mask logits (n, 1, size, size) of a centred disc of each radius (pixels)."""
    y, x = np.mgrid[:size, :size] - size / 2
    return np.stack([(r - np.hypot(x, y))[None] for r in radii]).astype(np.float32)


@pytest.fixture
def seg_model(tiny_seg_path):
    return load_model(ModelSpec(adapter=tiny_seg_path))


def test_masks_and_the_best_frames_ac_decide(seg_model):
    reference = disc_logits([40, 30, 5])
    assert agreement.compare(seg_model, reference, reference, "test").kept
    halved = agreement.compare(seg_model, reference, disc_logits([20, 15, 2.5]), "test")  # the AC 76 vs 158
    assert not halved.kept and halved.ac_change == pytest.approx(-0.5, abs=0.03)
    assert "mask overlap down to 0.25" in halved.describe()
    slightly = agreement.compare(seg_model, reference, disc_logits([40.3, 30, 5]), "test")  # AC +0.75 %
    assert slightly.kept and abs(slightly.ac_change) < agreement.AC_TOLERANCE
    gone = agreement.compare(seg_model, reference, disc_logits([-1, -1, -1]), "test")  # no mask at all
    assert not gone.kept and gone.ac_change == -1.0


def _halving_runtime(tiny_seg_path):
    """A compiled int8 that runs the model faithfully, then shrinks every mask to half its radius."""
    faithful = load_model(ModelSpec(adapter=tiny_seg_path)).module

    def run(images):
        with torch.inference_mode():
            logits = faithful(torch.from_numpy(images)).numpy()
        return np.where(logits > 0, logits - np.percentile(logits, 99.7), logits)  # most mask pixels drop out
    return CompiledModel("onnxruntime", "int8", run)


def test_a_compiled_int8_that_changes_the_masks_falls_back_to_fp32_and_says_so(tiny_seg_path, small_case, monkeypatch):
    monkeypatch.setattr(choice, "installed", lambda name: True)
    monkeypatch.setattr(scoring, "compile_model", lambda model, *a, **k: _halving_runtime(tiny_seg_path))
    case = Case.from_array(small_case.frames, "/virtual/case.mha")
    model = load_model(ModelSpec(adapter=tiny_seg_path))
    engine = make_engine(model, EngineSettings("cpu", "int8", 4, backend="onnxruntime"), first_case=lambda: case)
    assert (engine.backend, engine.precision, engine.compiled) == ("torch", "fp32", None)
    assert "changed the segmentation model's masks" in engine.notice and "case.mha" in engine.notice
    first = next(score_case(engine, case))
    assert "scoring in fp32" in first.notice
    fp32 = load_model(ModelSpec(adapter=tiny_seg_path))
    with torch.inference_mode():
        _, masks = fp32.predict(frames_to_tensor(case.frames[first.frames]))
    assert np.array_equal(first.masks, masks)  # the measurement fp32 gives, not the halved one


def test_a_fast_path_that_keeps_the_masks_is_used_and_checked_once(tiny_seg_path, small_case, monkeypatch):
    monkeypatch.setattr(scoring, "quantize_model", lambda module: None)  # int8 as exact as fp32
    looked = []
    real = agreement.check_frames
    monkeypatch.setattr(agreement, "check_frames", lambda *a: looked.append(1) or real(*a))
    case = Case.from_array(small_case.frames, "/virtual/case.mha")
    for _ in range(2):
        engine = make_engine(load_model(ModelSpec(adapter=tiny_seg_path)), EngineSettings("cpu", "int8", 4, backend="torch"),
                             first_case=lambda: case)
        assert (engine.precision, engine.notice) == ("int8", None)
    assert looked == [1]  # the verdict holds for the process


def test_fp32_is_not_checked(tiny_seg_path, monkeypatch):
    monkeypatch.setattr(agreement, "check_frames", lambda *a: pytest.fail("checked"))
    make_engine(load_model(ModelSpec(adapter=tiny_seg_path)), EngineSettings("cpu", "fp32", 4, backend="torch"))


def test_a_classification_fast_path_keeps_fp32s_decisions_and_best_frame_or_fp32_scores(tiny_cls_path, small_case,
                                                                                      monkeypatch):
    case = Case.from_array(small_case.frames, "/virtual/case.mha")
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "bf16", 4, backend="torch"),
                         first_case=lambda: case)
    assert (engine.precision, engine.notice) == ("bf16", None)  # the tiny model's bf16 keeps them
    verdict = agreement.remembered(engine.model, engine.variant)
    assert verdict.kept and verdict.decisions_kept == verdict.frames == agreement.CHECK_FRAMES and verdict.same_best
    agreement.forget()
    real = scoring._outputs
    monkeypatch.setattr(scoring, "_outputs", lambda engine, frames: -real(engine, frames))  # every decision flipped
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "bf16", 4, backend="torch"),
                         first_case=lambda: case)
    assert (engine.precision, engine.backend) == ("fp32", "torch")
    assert "changed the model's decisions" in engine.notice and "best frame moved" in engine.notice


def test_a_verdict_is_kept_for_later_starts(tiny_cls_path, small_case, monkeypatch):
    case = Case.from_array(small_case.frames, "/virtual/case.mha")
    make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "bf16", 4, backend="torch"), first_case=lambda: case)
    assert agreement.verdicts_file().stat().st_mode & 0o777 == 0o600
    agreement._verdicts.clear()  # a new process: only the file knows
    monkeypatch.setattr(agreement, "check_frames", lambda *a: pytest.fail("checked again"))
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "bf16", 4, backend="torch"))
    assert engine.precision == "bf16"
    agreement.verdicts_file().write_text("{damaged")  # damaged: checked again, never trusted
    agreement._verdicts.clear()
    assert agreement.remembered(engine.model, engine.variant) is None


def test_without_a_sweep_the_check_uses_synthetic_frames(seg_model):
    frames, where = agreement.check_frames(None, None)
    assert where == "a synthetic sweep" and len(frames) == agreement.CHECK_FRAMES and frames.dtype == np.uint8
