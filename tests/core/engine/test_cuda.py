"""The GPU path: CUDA scores agree with the CPU's fp32, in half precision, surviving short memory.

The tests marked `gpu` run only where CUDA is; the others check on any machine what the GPU path
does without a GPU: its input, its choices, its refusals and its fallback when memory is short.
"""

import numpy as np
import pytest
import torch

from fetal_iqa_gui.base.errors import EngineChoiceError, ScoringError
from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.case.synthetic import IMAGES_DIR
from fetal_iqa_gui.cli import main
from fetal_iqa_gui.engine import choice, scoring
from fetal_iqa_gui.engine.choice import EngineSettings, pick_precision
from fetal_iqa_gui.engine.preprocess import frames_to_tensor, normalise_tensor, resize_frames
from fetal_iqa_gui.engine.scoring import make_engine, score_case
from fetal_iqa_gui.model.loading import ModelSpec, load_model

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def sweep(small_case):
    return Case.from_array(small_case.frames, "/virtual/case.mha")


def scores_of(engine, sweep):
    """Every image frame's score as the front doors get them, and the batches' notices."""
    scores, notices, sizes = np.full(sweep.n_frames, np.nan, np.float32), [], []
    for batch in score_case(engine, sweep):
        scores[batch.frames] = batch.scores
        notices.append(batch.notice)
        sizes.append(len(batch.frames))
    return scores, [n for n in notices if n], sizes


def fail_when(module, out_of_memory):
    """Make `module` raise CUDA's out-of-memory error on the inputs `out_of_memory(images)` picks."""
    forward = module.forward

    def forward_or_fail(images):
        if out_of_memory(images):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(images)
    module.forward = forward_or_fail


def test_gpu_input_is_the_papers_preprocessing(sweep):
    """On a GPU frames go up as resized uint8 and are normalised there: the same numbers."""
    frames = sweep.frames[sweep.layout.image_frames()[:6]]
    on_gpu_path = normalise_tensor(torch.from_numpy(resize_frames(frames)))
    assert torch.equal(on_gpu_path, frames_to_tensor(frames))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(small_dataset, tiny_cls_path, tmp_path, capsys):
    sweep_path = sorted((small_dataset / IMAGES_DIR).glob("*.mha"))[0]
    out = tmp_path / "scores.csv"
    code = main(["score", str(sweep_path), "--adapter", str(tiny_cls_path), "--device", "cuda", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA GPU is available" in err and "Choose --device 'cpu' or 'auto'" in err
    assert "Traceback" not in err and not out.exists()


def test_gpu_precision_follows_the_card(monkeypatch):
    monkeypatch.setattr(choice, "cuda_has_bf16", lambda: True)
    assert pick_precision("auto", CUDA) == "bf16"
    monkeypatch.setattr(choice, "cuda_has_bf16", lambda: False)  # before Ampere bf16 is emulated, slower than fp16
    assert pick_precision("auto", CUDA) == "fp16"
    with pytest.raises(EngineChoiceError, match="this GPU has no bf16. Choose the precision 'fp16'") as refused:
        pick_precision("bf16", CUDA)
    assert refused.value.exit_code == 2
    monkeypatch.undo()
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert not choice.cuda_has_bf16()  # emulated bf16 does not count


def test_short_gpu_memory_halves_the_batch_and_says_so(tiny_cls_path, sweep):
    """Simulated on the CPU: the forward pass fails above 2 frames, as on a GPU that is nearly full."""
    every_patch = EngineSettings("cpu", "fp32", 8, backend="torch", black_patches="keep")  # the model's own module is the one failing
    expected, _, _ = scores_of(make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), every_patch), sweep)
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), every_patch)
    fail_when(engine.model.module, lambda images: len(images) > 2)
    scores, notices, sizes = scores_of(engine, sweep)
    images = sweep.layout.image_frames()
    # fp32 kernels differ by batch size in the last digits (1e-5 seen): the same scores to a user
    np.testing.assert_allclose(scores[images], expected[images], atol=1e-4)
    assert notices == ["GPU memory is short: batch size reduced to 2."]  # said once, with the size it settled on
    assert engine.batch_size == 2 and max(sizes[1:]) == 2


def test_a_model_too_large_for_the_gpu_is_a_clear_error(tiny_cls_path, monkeypatch):
    monkeypatch.setattr(scoring, "pick_device", lambda name: CUDA)  # as if there were a GPU
    model = load_model(ModelSpec(adapter=tiny_cls_path))
    place = model.module.to

    def place_or_fail(*args, **kwargs):
        if torch.device(kwargs.get("device", args[0] if args else "cpu")).type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return place(*args, **kwargs)
    monkeypatch.setattr(model.module, "to", place_or_fail)
    with pytest.raises(ScoringError, match="does not fit in the GPU's free memory.*choose the device 'cpu'"):
        make_engine(model, EngineSettings("cuda", "fp16", backend="torch"))


def cpu_fp32_scores(sweep):
    return scores_of(make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "fp32", 16, backend="torch")), sweep)[0]


@gpu
@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("fp16", torch.float16),
                                              ("bf16", torch.bfloat16)])
def test_gpu_keeps_cpu_fp32_decisions_and_best_frame(precision, dtype, sweep):
    if precision == "bf16" and not choice.cuda_has_bf16():
        pytest.skip("this GPU has no native bf16")
    engine = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cuda", precision, 16, backend="torch"))
    ran_in = set()
    linear = next(m for m in engine.model.module.modules() if type(m) is torch.nn.Linear)  # an MLP layer (called)
    linear.register_forward_hook(lambda module, args, output: ran_in.add(output.dtype))
    scores, notices, sizes = scores_of(engine, sweep)
    assert ran_in == {dtype} and not notices
    assert max(sizes) > engine.batch_size  # several passes queued per step
    expected = cpu_fp32_scores(sweep)
    images = sweep.layout.image_frames()
    threshold = engine.model.threshold
    assert np.mean((scores[images] >= threshold) == (expected[images] >= threshold)) >= 0.995
    assert np.nanargmax(scores) == np.nanargmax(expected)
    assert np.abs(scores[images] - expected[images]).max() < (0.01 if precision == "fp32" else 0.05)  # fp32: TF32 convs


@gpu
def test_gpu_out_of_memory_ends_on_the_cpu_with_the_same_scores(sweep):
    """Out of memory at every batch size: halved down to 1, then the CPU finishes the sweep."""
    engine = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cuda", "auto", 16, backend="torch"))
    fail_when(engine.model.module, lambda images: images.is_cuda)
    scores, notices, _ = scores_of(engine, sweep)
    assert notices == ["The GPU ran out of memory; scoring continues on the CPU (slower)."]
    assert engine.device.type == "cpu" and engine.description == "CPU fp32"
    images = sweep.layout.image_frames()
    np.testing.assert_allclose(scores[images], cpu_fp32_scores(sweep)[images], atol=1e-5)
