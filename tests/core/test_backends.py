"""Compiled CPU backends (ONNX Runtime, OpenVINO): torch's scores, converted once, cache never trusted blindly.

The runtimes are optional: tests that need one are skipped where it is not installed; the others
check what the engine does without them.
"""

import json
import shutil
import time

import numpy as np
import pytest
import torch

from fetal_iqa_gui import scoring
from fetal_iqa_gui.errors import ScoringError
from fetal_iqa_gui.fileio import STAGING_PREFIX
from fetal_iqa_gui.model import runtime
from fetal_iqa_gui.model.loading import ModelSpec, load_model
from fetal_iqa_gui.scoring import EngineSettings, make_engine, score_sweep
from fetal_iqa_gui.sweep import Sweep

RUNTIMES = [pytest.param(name, marks=[pytest.mark.slow, pytest.mark.skipif(not runtime.installed(name),
                                                                          reason=f"{name} is not installed")])
            for name in runtime.COMPILED]


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture
def own_cache(module_cache, monkeypatch):
    """The converted-model cache these tests share (a conversion takes seconds even for a tiny model)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(module_cache))
    return module_cache


@pytest.fixture(scope="module")
def frames(small_case):
    content = small_case.frames.reshape(len(small_case.frames), -1).max(axis=1) > 0
    return small_case.frames[content][::5][:12]


def engine_for(path, backend, precision="fp32", notes=None):
    return make_engine(load_model(ModelSpec(adapter=path)), EngineSettings("cpu", precision, 4, backend=backend),
                       notify=None if notes is None else notes.append)


@pytest.mark.parametrize("backend", RUNTIMES)
def test_compiled_fp32_gives_torch_scores_and_is_cached(backend, tiny_cls_path, frames, own_cache):
    expected, _ = engine_for(tiny_cls_path, "torch").predict(frames)
    if (own_cache / "fetal-iqa" / "compiled").exists():
        for entry in entries(own_cache, backend, "fp32"):
            shutil.rmtree(entry)
    notes = []
    started = time.perf_counter()
    engine = engine_for(tiny_cls_path, backend, notes=notes)
    cold = time.perf_counter() - started
    assert notes == [runtime.CONVERTING]
    assert engine.backend == backend and engine.variant == f"cpu-fp32-{backend}"
    assert "converted for this CPU" in engine.notice  # for the first batch, where no `notify` was given
    scores, masks = engine.predict(frames)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert masks is None

    started = time.perf_counter()
    again = engine_for(tiny_cls_path, backend, notes=notes)
    assert time.perf_counter() - started < cold / 2
    assert notes == [runtime.CONVERTING] and again.notice is None  # not converted again
    np.testing.assert_array_equal(again.predict(frames)[0], scores)


@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_corrupted_cache_entry_is_rebuilt(backend, tiny_cls_path, frames, own_cache):
    scores = engine_for(tiny_cls_path, backend).predict(frames)[0]  # converted, or from the cache
    entry = only_entry(own_cache, backend, "fp32")
    model_file = max((path for path in entry.iterdir() if path.name != runtime.MANIFEST), key=lambda p: p.stat().st_size)
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # same size, other weights: only the checksum tells
    model_file.write_bytes(bytes(data))

    notes = []
    again = engine_for(tiny_cls_path, backend, notes=notes)
    assert notes == [runtime.CONVERTING]
    np.testing.assert_array_equal(again.predict(frames)[0], scores)
    assert only_entry(own_cache, backend, "fp32") == entry  # replaced in place, no temporary folder left
    assert not [path for path in entry.parent.iterdir() if path.name.startswith(STAGING_PREFIX)]


def entries(cache, backend, precision):
    """The cache entries of the tiny CLS model converted for `backend` at `precision`."""
    found = []
    for path in (cache / "fetal-iqa" / "compiled").glob(f"*/{runtime.MANIFEST}"):
        manifest = json.loads(path.read_text())
        if (manifest["backend"], manifest["precision"]) == (backend, precision) and manifest["model"].startswith("classification"):
            found.append(path.parent)
    return found


def only_entry(cache, backend, precision):
    (entry,) = entries(cache, backend, precision)
    return entry


@pytest.mark.parametrize("backend", RUNTIMES)
def test_compiled_int8_keeps_the_decisions(backend, tiny_cls_path, frames, own_cache):
    reference = engine_for(tiny_cls_path, "torch")
    expected, _ = reference.predict(frames)
    engine = engine_for(tiny_cls_path, backend, "int8")
    assert engine.compiled.precision in ("int8", "int8-weights")
    scores, _ = engine.predict(frames)
    assert np.abs(scores - expected).max() < 0.05
    threshold = reference.model.threshold
    assert np.mean((scores >= threshold) == (expected >= threshold)) >= 0.9


@pytest.mark.slow
@pytest.mark.skipif(not runtime.installed("onnxruntime"), reason="onnxruntime is not installed")
def test_compiled_segmentation_gives_torch_masks(tiny_seg_path, frames, own_cache):
    expected_scores, expected_masks = engine_for(tiny_seg_path, "torch").predict(frames)
    scores, masks = engine_for(tiny_seg_path, "onnxruntime").predict(frames)
    assert np.mean(masks == expected_masks) > 0.999
    np.testing.assert_allclose(scores, expected_scores, atol=1e-3)


def test_without_runtimes_auto_is_torch_and_a_named_one_is_refused(tiny_cls_path, monkeypatch):
    monkeypatch.delenv("FETAL_IQA_BACKEND")
    monkeypatch.setattr(runtime, "installed", lambda name: name == "torch")
    monkeypatch.setattr(scoring, "installed", runtime.installed)
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4))
    assert engine.backend == "torch" and engine.variant == "cpu-fp32-torch"
    with pytest.raises(ScoringError, match="openvino is not installed") as error:
        make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4, backend="openvino"))
    assert "pip install" in str(error.value)


def test_auto_takes_onnxruntime_only_on_avx512(monkeypatch):
    monkeypatch.delenv("FETAL_IQA_BACKEND")
    monkeypatch.setattr(runtime, "installed", lambda name: name != "openvino")
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert runtime.pick_backend("auto", cpu, "auto") == "torch"  # its dynamic int8 was slower than torch's there
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert runtime.pick_backend("auto", cpu, "auto") == "onnxruntime"
    monkeypatch.setattr(runtime, "installed", lambda name: True)
    assert runtime.pick_backend("auto", cpu, "auto") == "openvino"


def test_a_failed_conversion_under_auto_scores_with_torch_and_says_so(tiny_cls_path, small_case, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter failed")
    monkeypatch.setenv("FETAL_IQA_BACKEND", "onnxruntime")
    monkeypatch.setattr(scoring, "installed", lambda name: True)
    monkeypatch.setattr(scoring, "compile_model", broken)
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4))
    assert engine.backend == "torch"
    sweep = Sweep.from_array(small_case.frames[:30])
    batches = score_sweep(engine, sweep)
    assert "could not convert" in next(batches).notice
    assert next(batches).notice is None
    with pytest.raises(ScoringError, match="exporter failed"):  # named explicitly: refused, not replaced
        make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4, backend="onnxruntime"))


def test_compiled_backends_refuse_gpus_and_fp16(monkeypatch):
    monkeypatch.setattr(scoring, "installed", lambda name: True)
    with pytest.raises(ScoringError, match="runs on the CPU"):
        scoring.check_backend("openvino", torch.device("cuda"), "bf16")
    with pytest.raises(ScoringError, match="does not run bf16"):
        scoring.check_backend("onnxruntime", torch.device("cpu"), "bf16")
    monkeypatch.delenv("FETAL_IQA_BACKEND")
    assert runtime.pick_backend("auto", torch.device("cuda"), "auto") == "torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_gpu_scores_agree_with_the_cpu(tiny_cls_path, frames):
    expected, _ = engine_for(tiny_cls_path, "torch").predict(frames)
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cuda", "auto", 64))
    assert engine.backend == "torch" and engine.device.type == "cuda"
    scores, _ = engine.predict(frames)
    assert np.abs(scores - expected).max() < 0.02
