"""Checkpoints: our adapter format, and import of the paper's PyTorch Lightning `.ckpt` files.

Our format is one `.safetensors` file: the trained tensors (LoRA, head or decoder; the tower too
in a full-model checkpoint) under our model's state-dict names, and a JSON document in the
safetensors metadata (`fetal_iqa`): task, model config, base-weights sha256, threshold,
preprocessing, training metrics, version.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..base.errors import ModelLoadError, choice
from .lora import load_folded
from .networks import TASKS, network_for, wrapped_by_peft
from .tower import (build_visual, check_config, check_state, encoder_of, on_meta, refuse_special, short_reason,
                    unsafe_object_error)

FORMAT_VERSION = 1
METADATA_KEY = "fetal_iqa"


def build_model(task: str, config: dict, lora: bool = True) -> torch.nn.Module:
    """A model of `task` on a randomly initialised tower of `config`: peft's LoRA applied (to train,
    or the paper's unmerged path), or with `lora=False` the plain tower a checkpoint folds into."""
    return network_for(task, build_visual(config), config, lora=lora)


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, metadata: dict, full_model: bool = False) -> None:
    """Write our format atomically. Adapter-only unless `full_model` (then the tower is included)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if not full_model:
        state = {k: v for k, v in state.items() if not k.startswith("encoder.") or "lora_" in k}
    document = dict(metadata, format_version=FORMAT_VERSION, task=model.task, full_model=full_model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False) as tmp:
        temp_path = Path(tmp.name)
    try:
        save_file(state, str(temp_path), metadata={METADATA_KEY: json.dumps(document)})
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the metadata document of one of our checkpoints."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(path, "the file does not exist", f"Check {choice('adapter')}.")
    refuse_special(path, "adapter")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(path, f"it is not a readable safetensors file ({error})",
                             "The file may be truncated; copy it again.") from None
    if METADATA_KEY not in header:
        raise ModelLoadError(path, "it is a safetensors file but not a fetal-iqa checkpoint (no metadata)")
    try:
        metadata = json.loads(header[METADATA_KEY])
    except ValueError:
        raise ModelLoadError(path, "its metadata is damaged") from None
    check_metadata(metadata, path)
    return state, metadata


def check_metadata(metadata, path: Path) -> None:
    """Raise a `ModelLoadError` naming the field unless the metadata holds what loading reads, of the right type."""
    if not isinstance(metadata, dict):
        raise ModelLoadError(path, "its metadata is not a JSON object")
    if metadata.get("task") not in TASKS:
        raise ModelLoadError(path, f"unknown task {metadata.get('task')!r} in its metadata")
    version = metadata.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelLoadError(path, f"its metadata's format_version is {version!r}, not a whole number")
    if version > FORMAT_VERSION:
        raise ModelLoadError(path, "it was written by a newer fetal-iqa", "Update fetal-iqa.")
    if "threshold" in metadata:
        threshold = metadata["threshold"]
        # NaN fails the range check too (every comparison with it is false)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ModelLoadError(path, f"its metadata's threshold is {threshold!r}, not a number from 0 to 1",
                                 "The file is damaged or was edited; use the adapter as `fetal-iqa train` wrote it.")
    for key, kind in (("name", str), ("demo", bool), ("full_model", bool)):
        if metadata.get(key) is not None and not isinstance(metadata[key], kind):
            raise ModelLoadError(path, f"its metadata's {key} is {metadata[key]!r}, not a {kind.__name__}")
    if metadata.get("config") is not None:
        check_config(metadata["config"], path)


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, full_model: bool) -> None:
    """Load a checkpoint's tensors; an adapter leaves the (already loaded) tower as it is. A model
    built with `lora=False` gets the LoRA folded into its tower (`load_folded`: `state` is used up)."""
    if not wrapped_by_peft(encoder_of(model)):
        load_folded(model, state, path, full_model)
        return
    own = model.state_dict()
    if not full_model:
        own = {k: v for k, v in own.items() if not k.startswith("encoder.") or "lora_" in k}
    check_state(own, state, path)
    model.load_state_dict(state, strict=full_model, assign=full_model and on_meta(model))


# ---------------------------------------------------------------------------------------------
# The paper's Lightning checkpoints, loaded without Lightning and without running pickled code.

# Lightning's non-tensor objects that such files hold, read as plain containers: its
# AttributeDict (the hyper-parameters) is a dict subclass, so it becomes a dict.
_LIGHTNING_STAND_INS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
    (dict, "lightning.fabric.utilities.data.AttributeDict"),
    (dict, "lightning_fabric.utilities.data.AttributeDict"),
    (dict, "pytorch_lightning.utilities.parsing.AttributeDict"),
    (dict, "lightning.pytorch.utilities.parsing.AttributeDict"),
]

_PREFIX_MAPS = {
    "classification": [("encoder.base_model.model.", "encoder.base_model.model."), ("classifier.", "classifier."),
                       ("output.", "classifier.")],
    "segmentation": [("encoder.base_model.model.transformer.visual_encoder.", "encoder.base_model.model."),
                     ("decoder.", "decoder."), ("output.", "decoder.")],
}


def read_lightning_checkpoint(path: str | os.PathLike) -> tuple[str, dict[str, torch.Tensor], dict]:
    """(task, our state dict, hyper-parameters) of a `.ckpt` saved by the paper's code."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(path, "the file does not exist", f"Check {choice('adapter')}.")
    refuse_special(path, "adapter")
    try:
        with torch.serialization.safe_globals(_LIGHTNING_STAND_INS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise unsafe_object_error(path, error, "Save the model's state_dict alone, or use `fetal-iqa train`.") from None
    except Exception as error:  # a damaged file fails in many ways inside torch.load
        reason = short_reason(error)
        raise ModelLoadError(path, f"the file is truncated or not a PyTorch checkpoint ({reason})") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ModelLoadError(path, "it has no state_dict: not a Lightning checkpoint")
    state = {k.removeprefix("_orig_mod."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    task = _guess_task(state)
    if task is None:
        raise ModelLoadError(path, "it holds neither the paper's ClassificationModel nor its SegmentationModel "
                             "(no 'classifier.' or 'decoder.' weights)")
    mapped = {}
    for key, value in state.items():
        for old, new in _PREFIX_MAPS[task]:
            if key.startswith(old):
                mapped[new + key[len(old):]] = value
                break
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    return task, mapped, hparams


def _guess_task(state: dict) -> str | None:
    if any(k.startswith(("decoder.decoder0", "output.decoder0")) for k in state):
        return "segmentation"
    if any(k.startswith(("classifier.", "output.")) for k in state):
        return "classification"
    return None


def config_from_state(state: dict[str, torch.Tensor]) -> dict:
    """The tower's open_clip config, read off its tensors' shapes (for checkpoints without one)."""
    prefix = "encoder.base_model.model."
    conv = state[prefix + "conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    positions = state[prefix + "positional_embedding"].shape[0] - 1
    grid = int(round(positions ** 0.5))
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"transformer\.resblocks\.(\d+)\.", k)))
    return {"embed_dim": state[prefix + "proj"].shape[1],
            "vision_cfg": {"image_size": grid * patch, "layers": layers, "width": width, "patch_size": patch}}
