"""The paper's LoRA without peft: a checkpoint's adapters folded into a plain tower as it loads.

Scoring needs no trainable adapters, so a model loaded for scoring is built without peft (which
imports transformers: seconds and some 160 MB) and each adapted layer gets W + (alpha / r) B A,
as peft's merge computes it. The checkpoint keeps peft's names, so that training, the paper's
files and ours stay one format:

    encoder.base_model.model.<layer>.base_layer.weight    the tower's weight (<layer>.weight here)
    encoder.base_model.model.<layer>.lora_A.default.weight   (r, in)
    encoder.base_model.model.<layer>.lora_B.default.weight   (out, r)

The out_proj adapters are checked and dropped, not folded: the paper's forward pass never
applied them (see networks.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from torch import nn

from ..base.errors import ModelLoadError
from .tower import check_state, encoder_of, on_meta, release_pages

RANK = 8
ALPHA = 16
DROPOUT = 0.1
TARGETS = ("c_fc", "c_proj", "out_proj")
APPLIED = ("c_fc", "c_proj")  # the targets whose adapters enter the forward pass
SCALE = ALPHA / RANK

PEFT_PREFIX = "encoder.base_model.model."
_ADAPTER = "default"  # peft's name for the one adapter


def adapted_layers(tower: nn.Module) -> list[str]:
    """The names of the tower's linear layers peft adapts (matched by their last name, as peft does)."""
    return [name for name, module in tower.named_modules()
            if isinstance(module, nn.Linear) and name.rpartition(".")[2] in TARGETS]


def load_folded(model: nn.Module, state: dict[str, torch.Tensor], path: Path | None, full_model: bool) -> None:
    """Load a checkpoint of the peft-wrapped model into the same model built without peft, folding
    its LoRA into the tower's weights; raises a `ModelLoadError` unless its keys and shapes fit.

    `full_model`: the tower's weights come from `state`, else the tower is already loaded (FetalCLIP's
    weights, usually memory-mapped) and `state` holds the adapters and the head. The tensors are
    taken out of `state` as they load, and layers are folded one at a time into new memory (the
    weights file is never written), the old weight let go at once: one float copy of the model.
    """
    tower = encoder_of(model)
    layers = adapted_layers(tower)
    _check_adapters(layers, state, path)
    check_state(_checkpoint_shapes(model, layers, full_model), state, path)
    adapters = {key: state.pop(key) for key in [k for k in state if ".lora_" in k]}
    plain = {_plain_name(key): state.pop(key) for key in list(state)}
    model.load_state_dict(plain, strict=full_model, assign=full_model and on_meta(model))
    del plain  # the module holds the tensors now: replacing a weight frees it
    with torch.no_grad():
        for name in layers:
            lora_a, lora_b = (adapters.pop(_peft_name(name, f"lora_{part}.{_ADAPTER}.weight")) for part in "AB")
            if name.rpartition(".")[2] not in APPLIED:
                continue
            linear = cast(nn.Linear, tower.get_submodule(name))  # `adapted_layers` names linear layers only
            base = linear.weight
            # peft's merge, operation for operation: W + (B @ A) * scale
            merged = base.float() + (lora_b.float() @ lora_a.float()) * SCALE
            linear.weight = nn.Parameter(merged.to(base.dtype), requires_grad=False)
            release_pages(base)  # folded elsewhere: its pages in the weights file can go
            del base, merged


def _check_adapters(layers: list[str], state: dict[str, torch.Tensor], path: Path | None) -> None:
    """Name the first LoRA tensor that is not of the paper's rank (other shapes: `check_state`'s
    message, as a tower of another config gives them)."""
    for name in layers:
        for part, rank_axis in (("A", 0), ("B", 1)):
            key = _peft_name(name, f"lora_{part}.{_ADAPTER}.weight")
            shape = tuple(state[key].shape) if key in state else None
            if shape is not None and (len(shape) != 2 or shape[rank_axis] != RANK):
                raise ModelLoadError(path, f"its LoRA tensor {key} has the shape {shape}, not that of the "
                                     f"paper's LoRA of rank {RANK}",
                                     "Use an adapter written by `fetal-iqa train` or the paper's code.")


def _checkpoint_shapes(model: nn.Module, layers: list[str], full_model: bool) -> dict[str, torch.Tensor]:
    """What the peft-wrapped model's checkpoint holds (as meta tensors of the right shapes)."""
    tower = encoder_of(model)
    shapes = {}
    for key, tensor in model.state_dict().items():
        if key.startswith("encoder."):
            if not full_model:
                continue
            inner = key.removeprefix("encoder.")
            layer, _, leaf = inner.rpartition(".")
            key = _peft_name(layer, f"base_layer.{leaf}") if layer in layers else PEFT_PREFIX + inner
        shapes[key] = torch.empty(tensor.shape, device="meta")
    for name in layers:
        linear = cast(nn.Linear, tower.get_submodule(name))
        shapes[_peft_name(name, f"lora_A.{_ADAPTER}.weight")] = torch.empty(RANK, linear.in_features, device="meta")
        shapes[_peft_name(name, f"lora_B.{_ADAPTER}.weight")] = torch.empty(linear.out_features, RANK, device="meta")
    return shapes


def _peft_name(layer: str, leaf: str) -> str:
    return f"{PEFT_PREFIX}{layer}.{leaf}"


def _plain_name(key: str) -> str:
    """A checkpoint key's name in the model built without peft."""
    if not key.startswith(PEFT_PREFIX):
        return key
    return "encoder." + key.removeprefix(PEFT_PREFIX).replace(".base_layer.", ".")
