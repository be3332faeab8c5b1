"""The paper's models: LoRA as published, the out_proj quirk, merging, SEG, checkpoints, Lightning import."""

import copy
import json
import sys
import types

import numpy as np
import pytest
import torch

from fetal_iqa_gui.model.checkpoint import (build_model, config_from_state, read_checkpoint, read_lightning_checkpoint, save_checkpoint)
from fetal_iqa_gui.model.loading import ModelSpec, load_model
from fetal_iqa_gui.model.networks import lora_parameter_count, merge_for_inference, tower_of, trainable_parameter_count
from fetal_iqa_gui.base.errors import ModelLoadError
from fetal_iqa_gui.model.tower import build_visual, load_visual_weights
from fetal_iqa_gui.base.resources import FETALCLIP_CONFIG

from tests.support import SMALL_CONFIG


def randomise_lora(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_real_config_has_the_papers_trainable_parameter_count():
    config = json.loads(FETALCLIP_CONFIG.read_text())
    with torch.device("meta"):
        model = build_model("classification", config)
    assert lora_parameter_count(model) == 2_359_296
    assert trainable_parameter_count(model) == 2_360_065
    assert sum(p.numel() for p in tower_of(model.encoder).parameters()) > 300_000_000


def test_out_proj_adapters_never_change_the_output(images):
    model = build_model("classification", SMALL_CONFIG).eval()
    before = model(images)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "out_proj.lora_B" in name:
                parameter.fill_(1.0)
    assert torch.equal(model(images), before)


def test_merged_model_gives_the_unmerged_outputs(images):
    model = randomise_lora(build_model("classification", SMALL_CONFIG)).eval()
    with torch.no_grad():
        expected = model(images)
        merged = merge_for_inference(copy.deepcopy(model))
        assert not any("lora" in name for name, _ in merged.named_parameters())
        assert (merged(images) - expected).abs().max() <= 1e-5


def test_segmenter_gives_full_size_mask_logits_from_four_blocks(images):
    model = build_model("segmentation", SMALL_CONFIG).eval()
    with torch.no_grad():
        states = model.hidden_states(images)
        logits = model(images)
    assert [tuple(s.shape) for s in states] == [(2, 64, 14, 14)] * 4
    assert logits.shape == (2, 1, 224, 224)


def test_adapter_checkpoint_round_trip_scores_the_same(tmp_path, images):
    model = randomise_lora(build_model("classification", SMALL_CONFIG))
    visual_state = {k.removeprefix("encoder.base_model.model."): v for k, v in model.state_dict().items()
                    if k.startswith("encoder.") and "lora_" not in k}
    visual_state = {k.replace(".base_layer.", "."): v for k, v in visual_state.items()}
    weights = tmp_path / "weights.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.visual.{k}": v for k, v in visual_state.items()}}, weights)
    adapter = tmp_path / "adapter.safetensors"
    save_checkpoint(model, adapter, {"config": SMALL_CONFIG, "threshold": 0.4})
    state, metadata = read_checkpoint(adapter)
    assert metadata["task"] == "classification" and metadata["threshold"] == 0.4
    assert all("lora_" in k or k.startswith("classifier.") for k in state)
    loaded = load_model(ModelSpec(weights=weights, adapter=adapter))
    with torch.no_grad():
        expected = torch.sigmoid(model.eval()(images)).numpy()
    scores, masks = loaded.predict(images)
    assert masks is None and loaded.threshold == 0.4
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_a_released_model_is_built_again_from_its_files_and_only_from_the_same_files(tmp_path, images):
    """A compiled backend releases torch's module; torch scoring after all (a fallback) rebuilds it."""
    adapter = tmp_path / "adapter.safetensors"
    save_checkpoint(randomise_lora(build_model("classification", SMALL_CONFIG)), adapter,
                    {"config": SMALL_CONFIG}, full_model=True)
    loaded = load_model(ModelSpec(adapter=adapter))
    expected, _ = loaded.predict(images)
    loaded.release()
    again, _ = loaded.predict(images)
    np.testing.assert_array_equal(again, expected)
    loaded.release()
    save_checkpoint(randomise_lora(build_model("classification", SMALL_CONFIG), seed=1), adapter,
                    {"config": SMALL_CONFIG}, full_model=True)  # another model under the same name
    with pytest.raises(ModelLoadError, match="changed on disk while it was in use"):
        loaded.predict(images)


def test_weights_file_errors_name_the_file(tmp_path):
    visual = build_visual(SMALL_CONFIG)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_visual_weights(visual, tmp_path / "FetalCLIP_weights.pt")
    truncated = tmp_path / "truncated.pt"
    torch.save({"state_dict": {"module.visual.proj": torch.zeros(64, 32)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(ModelLoadError, match="'truncated.pt'.*truncated"):
        load_visual_weights(visual, truncated)
    wrong = tmp_path / "wrong.pt"
    torch.save({"state_dict": {"module.visual.proj": torch.zeros(10, 10)}}, wrong)
    with pytest.raises(ModelLoadError, match="does not match the config"):
        load_visual_weights(visual, wrong)
    missing = tmp_path / "missing.pt"
    torch.save({"state_dict": {"module.visual.proj": torch.zeros(64, 32)}}, missing)
    with pytest.raises(ModelLoadError, match="missing"):
        load_visual_weights(visual, missing)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="text.pt"):
        load_visual_weights(visual, text)


@pytest.mark.timeout(30)  # before the fix a pipe blocked the load for good (the GIL held: no timeout fired)
@pytest.mark.parametrize("reader", ["adapter", "lightning", "weights"])
@pytest.mark.parametrize("planted", ["pipe", "folder"])
def test_a_model_file_that_is_a_pipe_or_a_folder_is_refused_not_opened(tmp_path, reader, planted):
    import os
    path = tmp_path / {"adapter": "model.safetensors", "lightning": "model.ckpt", "weights": "weights.pt"}[reader]
    os.mkfifo(path) if planted == "pipe" else path.mkdir()
    read = {"adapter": read_checkpoint, "lightning": read_lightning_checkpoint,
            "weights": lambda path: load_visual_weights(build_visual(SMALL_CONFIG), path)}[reader]
    with pytest.raises(ModelLoadError, match=f"{path.name}.*not a regular file .*{'pipe' if planted == 'pipe' else 'folder'}"):
        read(path)


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_sha256_mismatch_is_reported_not_ignored(tmp_path):
    visual = build_visual(SMALL_CONFIG)
    weights = tmp_path / "weights.pt"
    torch.save({"state_dict": {f"module.visual.{k}": v for k, v in visual.state_dict().items()}}, weights)
    warning = load_visual_weights(build_visual(SMALL_CONFIG), weights, verify_sha256=True)
    assert warning and "not the published" in warning


def _lightning_module_stub():
    """A stand-in for lightning.fabric.utilities.data.AttributeDict, pickled under Lightning's name."""
    name = "lightning.fabric.utilities.data"
    module = types.ModuleType(name)

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = name
    AttributeDict.__qualname__ = "AttributeDict"
    module.AttributeDict = AttributeDict
    for part in ("lightning", "lightning.fabric", "lightning.fabric.utilities", name):
        sys.modules.setdefault(part, types.ModuleType(part))
    sys.modules[name] = module
    return AttributeDict


def _save_paper_checkpoint(path, task, model, extra=None):
    """A checkpoint with the paper's Lightning layout and key names."""
    AttributeDict = _lightning_module_stub()
    state = {}
    for key, value in model.state_dict().items():
        if task == "segmentation" and key.startswith("encoder.base_model.model."):
            key = "encoder.base_model.model.transformer.visual_encoder." + key.removeprefix("encoder.base_model.model.")
        state[key] = value
    checkpoint = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0", "state_dict": state,
                  "hyper_parameters": AttributeDict(input_dim=SMALL_CONFIG["embed_dim"], num_classes=1),
                  "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": torch.tensor(0.1)}},
                  "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 3}}}}, "optimizer_states": []}
    if extra:
        checkpoint.update(extra)
    torch.save(checkpoint, path)
    for name in [m for m in sys.modules if m.startswith("lightning")]:
        del sys.modules[name]  # the app must load it without Lightning


@pytest.mark.parametrize("task", ["classification", pytest.param("segmentation", marks=pytest.mark.slow)])
def test_papers_lightning_checkpoint_gives_the_papers_scores(tmp_path, images, task):
    paper_model = randomise_lora(build_model(task, SMALL_CONFIG), seed=5).eval()
    path = tmp_path / f"{task}.ckpt"
    _save_paper_checkpoint(path, task, paper_model)
    found_task, state, hparams = read_lightning_checkpoint(path)
    assert found_task == task and hparams["num_classes"] == 1
    assert config_from_state(state)["vision_cfg"]["layers"] == 24
    loaded = load_model(ModelSpec(adapter=path))
    with torch.no_grad():
        output = paper_model(images)
    scores, masks = loaded.predict(images)
    if task == "classification":
        np.testing.assert_allclose(scores, torch.sigmoid(output).numpy(), atol=1e-4)
    else:
        assert np.array_equal(masks, (output[:, 0] > 0).numpy())


def test_lightning_checkpoint_with_foreign_objects_is_refused_without_running_them(tmp_path, capsys):
    model = build_model("classification", SMALL_CONFIG)
    path = tmp_path / "evil.ckpt"
    _save_paper_checkpoint(path, "classification", model, {"payload": _Evil()})
    with pytest.raises(ModelLoadError, match="does not load"):
        read_lightning_checkpoint(path)
    assert "pickled code ran" not in capsys.readouterr().out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page release is Linux only")
def test_released_weight_pages_leave_the_process_and_keep_their_values(tmp_path):
    from fetal_iqa_gui.model.tower import release_pages

    def resident_mb():
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * 4096 / 2**20

    torch.save({"w": torch.arange(32 * 2**20, dtype=torch.float32)}, tmp_path / "w.pt")  # 128 MB
    mapped = torch.load(tmp_path / "w.pt", mmap=True, weights_only=True)["w"]
    total = float(mapped.sum())  # reads every page
    before = resident_mb()
    release_pages(mapped)
    assert resident_mb() < before - 64
    assert float(mapped.sum()) == total  # read back from the file when used again
    anonymous = torch.ones(2**20)
    release_pages(anonymous)  # memory of its own is never dropped
    assert float(anonymous.sum()) == 2**20
