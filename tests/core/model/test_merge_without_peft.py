"""A model loaded for scoring folds its LoRA without peft: the paper's scores, no peft nor
transformers imported, and a checkpoint whose LoRA is not the paper's refused with a reason."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fetal_iqa_gui.base.errors import ModelLoadError
from fetal_iqa_gui.base.resources import DEMO_MODELS, real_path
from fetal_iqa_gui.engine.int8 import quantize_model
from fetal_iqa_gui.engine.preprocess import frames_to_tensor
from fetal_iqa_gui.model.checkpoint import METADATA_KEY, build_model, load_into, read_checkpoint
from fetal_iqa_gui.model.loading import ModelSpec, load_model
from fetal_iqa_gui.model.networks import merge_for_inference, wrapped_by_peft

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def frames(small_case):
    """Eight frames of a synthetic case, across its sweeps."""
    return frames_to_tensor(small_case.frames[5::22][:8])


def peft_models(path):
    """The checkpoint at `path` in peft's wrapper, LoRA unmerged (the paper's path) and merged by peft."""
    state, metadata = read_checkpoint(path)
    with torch.device("meta"):
        unmerged = build_model(metadata["task"], metadata["config"])
    load_into(unmerged, state, path, full_model=True)
    unmerged.eval().requires_grad_(False)
    return unmerged, merge_for_inference(copy.deepcopy(unmerged))


@pytest.fixture(params=["demo classification", "demo segmentation", "tiny classification"])
def checkpoint(request, tiny_cls_path):
    kind, task = request.param.split()
    if kind == "tiny":
        yield tiny_cls_path
    else:
        with real_path(DEMO_MODELS[task]) as path:
            yield path


def test_folded_model_scores_as_the_papers_unmerged_and_peft_merged_paths(checkpoint, frames):
    loaded = load_model(ModelSpec(adapter=checkpoint))
    module = loaded.module
    assert not wrapped_by_peft(module.encoder) and not any("lora" in name for name, _ in module.named_parameters())
    assert {p.dtype for p in module.parameters()} == {torch.float32}
    unmerged, merged = peft_models(checkpoint)
    with torch.inference_mode():
        folded, by_peft, paper = module(frames), merged(frames), unmerged(frames)
    assert torch.equal(folded, by_peft)  # peft's merge, operation for operation
    # the unmerged path adds B(Ax) instead: float rounding, up to 2e-5 in the demo SEG's mask logits
    np.testing.assert_allclose(folded.numpy(), paper.numpy(), rtol=0, atol=1e-4)
    for reference in (by_peft, paper):
        np.testing.assert_allclose(loaded.postprocess(folded)[0], loaded.postprocess(reference)[0], rtol=0, atol=1e-5)


def test_torch_int8_of_a_folded_model_is_peft_merged_int8(tiny_cls_path, frames):
    """int8 quantises each MLP layer as LoRA merges into it; a folded model's layers are quantised all the same."""
    loaded = load_model(ModelSpec(adapter=tiny_cls_path))
    unmerged, _ = peft_models(tiny_cls_path)
    quantize_model(loaded.module)
    quantize_model(unmerged)
    assert not [name for name, m in loaded.module.encoder.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.inference_mode():
        assert torch.equal(loaded.module(frames), unmerged(frames))


def test_scoring_the_demo_model_imports_neither_peft_nor_transformers():
    code = ("import sys\nimport numpy as np\n"
            "from fetal_iqa_gui.engine.scoring import EngineSettings, load_engine\n"
            "from fetal_iqa_gui.model.spec import ModelSpec\n"
            "engine = load_engine(ModelSpec.demo_model(), EngineSettings('cpu', 'fp32', 4, backend='torch'))\n"
            "frames = np.random.default_rng(0).integers(0, 255, (4, 300, 400), dtype=np.uint8)\n"
            "assert np.isfinite(engine.predict(frames)[0]).all()\n"
            "print(','.join(m for m in ('peft', 'transformers') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"scoring imported {result.stdout.strip()}"


@pytest.mark.parametrize("part", ["lora_A", "lora_B"])
def test_a_checkpoint_whose_lora_is_not_of_rank_8_is_refused_with_a_reason(tmp_path, part):
    with real_path(DEMO_MODELS["classification"]) as path:
        state, metadata = read_checkpoint(path)
    key = f"encoder.base_model.model.transformer.resblocks.1.mlp.c_fc.{part}.default.weight"
    state[key] = (state[key][:4] if part == "lora_A" else state[key][:, :4]).contiguous()
    bad = tmp_path / "rank4.safetensors"
    save_file(state, str(bad), metadata={METADATA_KEY: json.dumps(metadata)})
    with pytest.raises(ModelLoadError, match=r"rank4\.safetensors.*resblocks\.1\.mlp\.c_fc.*rank 8"):
        load_model(ModelSpec(adapter=bad))


def test_a_lora_tensor_of_another_tower_names_the_config(tmp_path):
    with real_path(DEMO_MODELS["classification"]) as path:
        state, metadata = read_checkpoint(path)
    key = "encoder.base_model.model.transformer.resblocks.0.mlp.c_proj.lora_A.default.weight"
    state[key] = torch.zeros(8, 100)  # rank 8, but another width than the config's tower
    bad = tmp_path / "wide.safetensors"
    save_file(state, str(bad), metadata={METADATA_KEY: json.dumps(metadata)})
    with pytest.raises(ModelLoadError, match=r"does not match the config.*c_proj\.lora_A"):
        load_model(ModelSpec(adapter=bad))
