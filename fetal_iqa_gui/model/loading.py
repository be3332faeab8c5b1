"""From what the user names (weights, config, adapter, or the demo) to a model ready to score.

A model is built without peft and its LoRA folded into the tower as it loads (lora.py): the
paper's outputs within float rounding, without importing peft and transformers. The paper's
unmerged path (peft's wrapper) is `checkpoint.build_model` with `load_into`, for training and benchmarks.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..base.errors import ModelLoadError, choice
from ..base.resources import DEMO_MODELS, fetalclip_config, fetalclip_weights, real_path
from .checkpoint import build_model, config_from_state, load_into, read_checkpoint, read_lightning_checkpoint
from .networks import merge_for_inference, network_for
from .spec import DEMO_LABEL, ModelSpec
from .task import DEFAULT_THRESHOLDS
from .tower import build_visual, load_config, load_visual_weights

log = logging.getLogger(__name__)

_HASH_LIMIT = 64 << 20  # larger files are identified by name, size and time, not by content


@dataclass
class LoadedModel:
    """An eval-mode model and what the app needs to know about it."""

    _module: nn.Module | None
    task: str
    threshold: float  # the model's own (its metadata's, else its kind's default)
    name: str
    identity: str
    is_demo: bool = False
    metadata: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    spec: ModelSpec | None = None  # what it was loaded from: `module` rebuilds from it after `release`

    @property
    def module(self) -> nn.Module:
        if self._module is None:
            if self.spec is None:
                raise ModelLoadError(None, "the model was released and cannot be built again", "Open the model again.")
            again = load_model(self.spec)
            if again.identity != self.identity:
                raise ModelLoadError(None, "the model's files changed on disk while it was in use",
                                     "Open the model again.")
            self._module = again.module  # just loaded: its module is there, nothing is loaded twice
        return self._module

    @property
    def holds_module(self) -> bool:
        """Whether the torch module is in memory (`module` would not load it again)."""
        return self._module is not None

    def release(self) -> None:
        """Free the torch module (a compiled backend runs without it; converting needs the memory)."""
        self._module = None

    @property
    def is_segmentation(self) -> bool:
        return self.task == "segmentation"

    def merge(self) -> None:
        """Fold LoRA into the tower for speed (see `merge_for_inference`); a no-op once merged, as a
        model `load_model` loaded is (its LoRA folded as it loaded: lora.py)."""
        merge_for_inference(self.module)

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores (n,) float in [0, 1] and, for SEG, the 224 x 224 masks (n, 224, 224) bool.

        CLS scores are sigmoid probabilities; SEG scores are the predicted abdomen area as a
        fraction of the frame (good at >= 1 %, the paper's rule).
        """
        return self.postprocess(self.module(images))

    def postprocess(self, output: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """The module's raw output (logits, or mask logits for SEG) -> what `predict` returns."""
        output = output.float()
        if not self.is_segmentation:
            return torch.sigmoid(output).cpu().numpy(), None
        masks = (output[:, 0] > 0).cpu().numpy()  # sigmoid > 0.5
        return masks.reshape(len(masks), -1).mean(axis=1), masks


def load_model(spec: ModelSpec) -> LoadedModel:
    """Build and load the model `spec` names, in eval mode; raises `ModelLoadError`."""
    model = _load(spec)
    model.spec = spec
    return model


def _load(spec: ModelSpec) -> LoadedModel:
    if spec.demo:
        resource = DEMO_MODELS.get(spec.demo)
        if resource is None:
            raise ModelLoadError(None, f"there is no demo model for the task {spec.demo!r}")
        with real_path(resource) as path:
            if not path.is_file():
                raise ModelLoadError(path, "the demo model is not installed",
                                     f"Make it with `fetal-iqa train-demo --task {spec.demo}` (see the README).")
            return _load_ours(spec, path, demo=True)
    if spec.adapter is None:
        raise ModelLoadError(spec.weights, "FetalCLIP's weights alone cannot score frames: a trained adapter is needed",
                             f"Give {choice('adapter')}, or use the demo model.")
    adapter = Path(spec.adapter)
    if adapter.suffix == ".ckpt":
        return _load_lightning(spec, adapter)
    return _load_ours(spec, adapter, demo=False)


def _load_ours(spec: ModelSpec, path: Path, demo: bool) -> LoadedModel:
    state, metadata = read_checkpoint(path)
    task = metadata["task"]
    demo = demo or bool(metadata.get("demo"))  # a demo model stays labelled as one, whatever its path
    config = load_config(spec.config) if spec.config else metadata.get("config")
    if config is None:
        config = fetalclip_config()
    warnings = []
    if metadata.get("full_model"):
        with torch.device("meta"):  # the file's tensors become the model's: no random init, no copy
            model = build_model(task, config, lora=False)
        base_identity = "included"
    else:
        weights = Path(spec.weights) if spec.weights else fetalclip_weights()
        with torch.device("meta"):
            visual = build_visual(config)
        warning = load_visual_weights(visual, weights, spec.verify_sha256)
        if warning:
            warnings.append(warning)
        model = network_for(task, visual, config, lora=False)
        base_identity = _file_identity(weights)
    load_into(model, state, path, full_model=bool(metadata.get("full_model")))
    name = DEMO_LABEL if demo else metadata.get("name") or f"FetalCLIP_{'CLS' if task == 'classification' else 'SEG'} ({path.name})"
    return _ready(model, task, metadata, name, f"{task}:{_file_identity(path)}:{base_identity}", demo, warnings)


def _load_lightning(spec: ModelSpec, path: Path) -> LoadedModel:
    task, state, hparams = read_lightning_checkpoint(path)
    try:
        config = load_config(spec.config) if spec.config else config_from_state(state)
    except (KeyError, ValueError):
        raise ModelLoadError(path, "the tower's shape cannot be read from it", f"Give its config ({choice('config')}).") from None
    with torch.device("meta"):
        model = build_model(task, config, lora=False)
    load_into(model, state, path, full_model=True)
    metadata = {"source": "paper's Lightning checkpoint", "hyper_parameters": _plain(hparams), "config": config}
    name = f"FetalCLIP_{'CLS' if task == 'classification' else 'SEG'} ({path.name})"
    return _ready(model, task, metadata, name, f"{task}:{_file_identity(path)}", False, [])


def _ready(model, task, metadata, name, identity, demo, warnings) -> LoadedModel:
    """Eval mode (LoRA already folded: built without peft, see lora.py)."""
    model.eval().requires_grad_(False)
    threshold = float(metadata.get("threshold", DEFAULT_THRESHOLDS[task]))
    log.info("model ready: %s (%s)", name, identity)
    return LoadedModel(model, task, threshold, name, identity, demo, metadata, warnings)


def _file_identity(path: Path) -> str:
    """Content hash for small files; name, size and modification time for large ones."""
    path = Path(path)
    stat = path.stat()
    if stat.st_size <= _HASH_LIMIT:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)

