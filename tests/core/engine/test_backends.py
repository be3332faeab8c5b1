"""Compiled CPU backends (ONNX Runtime, OpenVINO): torch's scores, converted once, cache never trusted blindly.

The runtimes are optional: tests that need one are skipped where it is not installed; the others
check what the engine does without them.
"""

import gc
import json
import shutil
import time
import weakref

import numpy as np
import pytest
import torch

from fetal_iqa_gui.base.errors import FetalIqaError, ScoringError
from fetal_iqa_gui.base.fileio import STAGING_PREFIX
from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.engine import choice, scoring
from fetal_iqa_gui.engine import compiled as runtime
from fetal_iqa_gui.engine.choice import EngineSettings
from fetal_iqa_gui.engine.scoring import make_engine, score_case
from fetal_iqa_gui.model.loading import ModelSpec, load_model

RUNTIMES = [pytest.param(name, marks=[pytest.mark.slow, pytest.mark.skipif(not choice.installed(name),
                                                                          reason=f"{name} is not installed")])
            for name in choice.COMPILED]


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
    for entry in entries(own_cache, backend, "fp32"):  # none before the first conversion
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
    for path in entry.rglob("*"):  # the model's files, and OpenVINO's compiled blob
        if path.is_file() and path.name != runtime.MANIFEST:
            damage(path)

    notes = []
    again = engine_for(tiny_cls_path, backend, notes=notes)
    assert notes == [runtime.CONVERTING]
    np.testing.assert_array_equal(again.predict(frames)[0], scores)
    assert only_entry(own_cache, backend, "fp32") == entry  # replaced in place, no temporary folder left
    assert not [path for path in entry.parent.iterdir() if path.name.startswith(STAGING_PREFIX)]


@pytest.mark.slow
@pytest.mark.skipif(not choice.installed("openvino"), reason="openvino is not installed")
def test_openvino_starts_from_its_compiled_blob_only_when_it_is_the_recorded_one(tiny_cls_path, frames, own_cache):
    scores = engine_for(tiny_cls_path, "openvino").predict(frames)[0]
    entry = only_entry(own_cache, "openvino", "fp32")
    (blob,) = (entry / runtime.BLOBS).iterdir()
    recorded = json.loads((entry / runtime.MANIFEST).read_text())["blob"]
    assert recorded == {blob.name: runtime._sha256(blob)}
    damage(blob)

    notes = []
    again = engine_for(tiny_cls_path, "openvino", notes=notes)
    assert notes == []  # compiled again from the model's checked files, not converted again
    np.testing.assert_array_equal(again.predict(frames)[0], scores)
    assert json.loads((entry / runtime.MANIFEST).read_text())["blob"] == {blob.name: runtime._sha256(blob)}


def damage(path):
    """Other bytes, same size: only a checksum tells."""
    path.chmod(0o600)  # OpenVINO writes its blob read-only
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 64])
    path.write_bytes(bytes(data))


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
def test_compiled_int8_keeps_the_decisions(backend, small_case, own_cache):
    # a trained model: the tiny random one's scores hang on feature differences of about 1 % (its head
    # is scaled up about 200x to spread them), far below what any int8 keeps
    frames = small_case.frames[::4]
    model = load_model(ModelSpec.demo_model())
    reference = make_engine(model, EngineSettings("cpu", "fp32", 4, backend="torch"))
    expected, _ = reference.predict(frames)
    engine = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "int8", 4, backend=backend))
    assert engine.compiled.precision in ("int8", "int8-weights")
    scores, _ = engine.predict(frames)
    assert np.abs(scores - expected).max() < 0.05
    threshold = reference.model.threshold
    assert np.mean((scores >= threshold) == (expected >= threshold)) >= 0.9


@pytest.mark.slow
@pytest.mark.skipif(not choice.installed("onnxruntime"), reason="onnxruntime is not installed")
def test_compiled_segmentation_gives_torch_masks(tiny_seg_path, frames, own_cache):
    expected_scores, expected_masks = engine_for(tiny_seg_path, "torch").predict(frames)
    scores, masks = engine_for(tiny_seg_path, "onnxruntime").predict(frames)
    assert np.mean(masks == expected_masks) > 0.999
    np.testing.assert_allclose(scores, expected_scores, atol=1e-3)


def test_without_runtimes_auto_is_torch_and_a_named_one_is_refused(tiny_cls_path, monkeypatch):
    monkeypatch.delenv("FETAL_IQA_AUTO")
    monkeypatch.setattr(choice, "installed", lambda name: name == "torch")
    monkeypatch.setattr(runtime, "installed", choice.installed)
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4))
    assert engine.backend == "torch" and engine.variant == "cpu-fp32-torch"
    with pytest.raises(ScoringError, match="openvino is not installed") as error:
        make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4, backend="openvino"))
    assert "pip install" in str(error.value)


def test_auto_on_a_cpu_is_left_to_the_measurement_and_on_a_gpu_is_torch():
    assert choice.pick_backend("auto", torch.device("cpu"), "auto") == choice.MEASURED
    assert choice.pick_backend("auto", torch.device("cpu"), "fp16") == "torch"  # only torch runs fp16
    assert choice.pick_backend("auto", torch.device("cuda"), "auto") == "torch"


def test_a_failed_conversion_under_auto_scores_with_torch_and_says_so(tiny_cls_path, small_case, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter failed")
    monkeypatch.setenv("FETAL_IQA_AUTO", "onnxruntime:int8")
    monkeypatch.setattr(choice, "installed", lambda name: True)
    monkeypatch.setattr(scoring, "compile_model", broken)
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4))
    assert engine.backend == "torch"
    sweep = Case.from_array(small_case.frames[:30])
    batches = score_case(engine, sweep)
    assert "could not convert" in next(batches).notice
    assert next(batches).notice is None
    with pytest.raises(ScoringError, match="exporter failed"):  # named explicitly: refused, not replaced
        make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "fp32", 4, backend="onnxruntime"))


def test_compiled_backends_refuse_gpus_and_fp16(monkeypatch):
    monkeypatch.setattr(choice, "installed", lambda name: True)
    with pytest.raises(ScoringError, match="runs on the CPU"):
        choice.check_backend("openvino", torch.device("cuda"), "bf16")
    with pytest.raises(ScoringError, match="does not run bf16"):
        choice.check_backend("onnxruntime", torch.device("cpu"), "bf16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_gpu_scores_agree_with_the_cpu(tiny_cls_path, frames):
    expected, _ = engine_for(tiny_cls_path, "torch").predict(frames)
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cuda", "auto", 64))
    assert engine.backend == "torch" and engine.device.type == "cuda"
    scores, _ = engine.predict(frames)
    assert np.abs(scores - expected).max() < 0.02


def test_int8_calibration_source_is_the_sample_else_the_first_sweep_else_synthetic(small_dataset, small_case):
    sample = next((small_dataset / "images").rglob("*.mha"))
    asked = []
    sweep = Case.from_array(small_case.frames[:60], "s.mha")
    first = runtime.user_calibration(None, lambda: asked.append(1) or sweep)
    assert first.key == "first-sweep" and asked == []  # the sweep is read only when a conversion needs it
    frames, source, sha256 = first.load()
    assert frames.shape[1:] == (3, 224, 224) and (source, sha256) == ("the first sweep scored", sweep.content_hash)
    chosen = runtime.user_calibration(sample, first.load)
    assert chosen.key.startswith("sample:") and chosen.load()[1:] == ("the sample sweep", load_case(sample).content_hash)
    assert runtime.user_calibration(None, None) is runtime.SYNTHETIC


@pytest.mark.skipif(not choice.installed("openvino"), reason="openvino is not installed")
def test_an_unreadable_calibration_sweep_is_told_not_replaced_by_torch(tiny_cls_path, tmp_path, own_cache, monkeypatch):
    monkeypatch.setenv("FETAL_IQA_AUTO", "openvino:int8")
    settings = EngineSettings("cpu", "int8", 4, calibration=str(tmp_path / "missing.mha"))
    with pytest.raises(FetalIqaError, match="missing.mha"):
        make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), settings)


@pytest.mark.slow
@pytest.mark.skipif(not choice.installed("openvino"), reason="openvino is not installed")
def test_openvino_int8_of_a_real_model_is_calibrated_on_the_first_sweep_and_says_so(tiny_cls_path, small_case, own_cache):
    sweep = Case.from_array(small_case.frames[:90], "first.mha")
    settings = EngineSettings("cpu", "int8", 4, backend="openvino")
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), settings, first_case=lambda: sweep)
    assert engine.compiled.calibrated_on == f"the first sweep scored (pixels sha256 {sweep.content_hash[:12]}…)"
    manifest = json.loads((only_entry(own_cache, "openvino", engine.compiled.precision) / runtime.MANIFEST).read_text())
    assert manifest["calibration"] == "first-sweep" and manifest["calibration_sha256"] == sweep.content_hash
    assert "first.mha" not in json.dumps(manifest)
    again = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), settings, first_case=pytest.fail)  # cached
    assert again.compiled.calibrated_on == engine.compiled.calibrated_on


def test_a_backend_choice_this_computer_cannot_run_is_a_usage_error(small_dataset, tiny_cls_path, tmp_path, capsys,
                                                                    monkeypatch):
    from fetal_iqa_gui.cli import main
    from fetal_iqa_gui.case.synthetic import IMAGES_DIR
    monkeypatch.setattr(choice, "installed", lambda name: name != "openvino")
    sweep_path = sorted((small_dataset / IMAGES_DIR).glob("*.mha"))[0]
    out = tmp_path / "scores.csv"
    for flags, message in ((["--backend", "openvino"], "openvino is not installed"),
                           (["--backend", "onnxruntime", "--precision", "bf16"], "onnxruntime does not run bf16")):
        code = main(["score", str(sweep_path), "--adapter", str(tiny_cls_path), *flags, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err and not out.exists(), flags


@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_compiled_engine_keeps_no_copy_of_torchs_weights(backend, tiny_cls_path, own_cache):
    """The full model's weights take 1.2 GB: once exported (onnxscript's rewriter held on to the
    exported graph, and so to them) and while the compiled model scores, torch's copy is gone."""
    model = load_model(ModelSpec(adapter=tiny_cls_path))
    weight = weakref.ref(next(model.module.parameters()))
    for entry in entries(own_cache, backend, "fp32"):
        shutil.rmtree(entry)  # converted now, not read from the cache
    engine = make_engine(model, EngineSettings("cpu", "fp32", 4, backend=backend))
    gc.collect()
    assert engine.compiled.converted_s is not None and weight() is None


def test_a_converted_segmenter_must_keep_the_masks_not_only_their_areas():
    """Static int8's check: an abdomen drawn elsewhere, of the same size, keeps the decision but not the frame."""
    from fetal_iqa_gui.model.loading import LoadedModel
    model = LoadedModel(None, "segmentation", 0.01, "segmenter", "id")
    rows, columns = np.mgrid[:224, :224]

    def logits(*centres):  # a disc of radius 30 per frame (about 5.6 % of it), or an empty frame
        discs = [((rows - y) ** 2 + (columns - x) ** 2 < 30 ** 2) if y else np.zeros((224, 224), bool)
                 for y, x in centres]
        return np.where(np.stack(discs)[:, None], 5.0, -5.0).astype(np.float32)
    reference = logits((100, 100), (0, 0), (120, 110))
    assert runtime.agrees(model, reference, logits((102, 101), (0, 0), (120, 110))) == (1.0, True)
    share, same_best = runtime.agrees(model, reference, logits((100, 160), (0, 0), (120, 110)))  # moved 60 px
    assert share == pytest.approx(2 / 3)
    speck = logits((100, 100), (0, 0), (120, 110))
    speck[1, 0, :5, :5] = 5.0  # a few pixels on a frame both call not good: not drawn as an abdomen
    assert runtime.agrees(model, reference, speck)[0] == 1.0


def test_processes_that_start_together_convert_the_model_once(tiny_cls_path, own_cache, monkeypatch):
    """Ray's workers start together: one converts (minutes, 4.5 GB for ViT-L/14), the others wait for
    its cache entry and read it."""
    import threading
    conversions = []

    def convert(model, backend, precision, folder, work, frames, tokens=None):
        conversions.append(backend)
        time.sleep(1.0)
        (folder / "model.onnx").write_bytes(b"converted")
        return precision
    monkeypatch.setattr(runtime, "installed", lambda name: True)
    monkeypatch.setattr(runtime, "runtime_version", lambda name: "together-1")  # an entry of its own
    monkeypatch.setattr(runtime, "_convert", convert)
    monkeypatch.setattr(runtime, "_ort_session", lambda entry, threads: lambda images: images)
    monkeypatch.setattr(runtime, "runtime_version", lambda backend: "1.0")
    models = [load_model(ModelSpec(adapter=tiny_cls_path)) for _ in range(3)]
    results = []
    workers = [threading.Thread(target=lambda m=m: results.append(runtime.compile_model(m, "onnxruntime", "fp32", 1)))
               for m in models]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert conversions == ["onnxruntime"]
    assert sorted(result.converted_s is None for result in results) == [False, True, True]


def fake_conversion(monkeypatch):
    """A conversion that writes one small file, loaded by a stand-in runtime: what the cache does
    with an entry, without ONNX Runtime or OpenVINO."""
    def convert(model, backend, precision, folder, work, frames, tokens=None):
        (folder / "model.onnx").write_bytes(b"converted weights")
        return precision
    monkeypatch.setattr(runtime, "_convert", convert)
    monkeypatch.setattr(runtime, "_ort_session", lambda entry, threads: lambda images: images)
    monkeypatch.setattr(runtime, "runtime_version", lambda backend: "1.0")


def test_a_converted_model_is_private_and_its_manifest_knows_the_sweep_by_content_only(tmp_path, monkeypatch,
                                                                                      small_case):
    from types import SimpleNamespace
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fake_conversion(monkeypatch)
    sweep = Case.from_array(small_case.frames[:60], tmp_path / "Doe_Jane" / "first.mha")
    model = SimpleNamespace(name="tiny", identity="classification|tiny", task="classification")
    entry = runtime.compiled_dir() / "entry"
    runtime.private_folder(entry.parent)
    converted = runtime._convert_into(entry, model, "onnxruntime", "int8", 1, False,
                                      runtime.user_calibration(None, lambda: sweep))
    text = (entry / runtime.MANIFEST).read_text()
    assert json.loads(text)["calibration_sha256"] == sweep.content_hash
    assert "Doe_Jane" not in text and "first.mha" not in text
    assert converted.calibrated_on == f"the first sweep scored (pixels sha256 {sweep.content_hash[:12]}…)"
    modes = {path.name: path.stat().st_mode & 0o777 for path in [runtime.compiled_dir(), entry, *entry.iterdir()]}
    assert modes == {"compiled": 0o700, "entry": 0o700, runtime.MANIFEST: 0o600, "model.onnx": 0o600}


def test_an_entry_whose_manifest_names_its_calibration_sweep_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fake_conversion(monkeypatch)
    entry = runtime.compiled_dir() / "entry"
    entry.mkdir(parents=True)
    (entry / "model.onnx").write_bytes(b"converted weights")
    (entry / runtime.MANIFEST).write_text(json.dumps({  # as an earlier version wrote it
        "backend": "onnxruntime", "precision": "int8", "calibration": "first-sweep",
        "calibrated_on": "the first sweep scored (Doe_Jane.mha)", "files": runtime._checksums(entry)}))
    assert runtime._load_entry(entry, "onnxruntime", 1, False, verify=True) is None
    assert not entry.exists()
