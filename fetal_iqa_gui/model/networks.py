"""FetalCLIP_CLS and FetalCLIP_SEG: the paper's two models on the FetalCLIP vision tower.

Both wrap the tower in the paper's LoRA (peft: r 8, alpha 16, dropout 0.1, targets c_fc, c_proj,
out_proj). Module names follow the paper's code (`encoder`, `classifier`, `decoder` and the
UNETR block names) so that its checkpoints map onto ours key for key.

The out_proj quirk: torch's MultiheadAttention reads `out_proj.weight` directly, and peft's
wrapper hands it the base weight, so the out_proj adapters never enter the forward pass. The
paper's model computed exactly that; `merge_for_inference` and lora.py keep it so.

peft is imported only where a model is wrapped or merged by it (training, the paper's unmerged
path): a model loaded for scoring is built with `lora=False` and its LoRA folded as it loads
(lora.py), so scoring never imports peft nor the transformers it pulls in.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TypeGuard, cast

import torch
import torch.nn.functional as F
from torch import nn

from .lora import ALPHA, APPLIED, DROPOUT, RANK, TARGETS, adapted_layers
from .tower import VisionTransformer, encoder_of, release_pages
from .task import DEFAULT_THRESHOLDS

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel

SEG_INPUT_CHANNELS = 3
SEG_INIT_FILTERS = 32  # the paper's decoder width; a config's "decoder_filters" may reduce it (the demo)
SEG_GRID = 14  # the decoder's token grid: hidden states are resized to 14 x 14
SEG_GOOD_FRACTION = DEFAULT_THRESHOLDS["segmentation"]
TASKS = ("classification", "segmentation")


def lora_config() -> LoraConfig:
    from peft import LoraConfig
    return LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=DROPOUT, bias="none",
                      target_modules=list(TARGETS))


def with_lora(visual: nn.Module) -> PeftModel:
    """The tower frozen, with the paper's LoRA adapters (which are trainable)."""
    from peft import get_peft_model
    for parameter in visual.parameters():
        parameter.requires_grad = False
    return get_peft_model(visual, lora_config())


def wrapped_by_peft(encoder: nn.Module) -> TypeGuard[PeftModel]:
    """Whether LoRA is still peft's, separate from the weights (peft is imported if so: no import here)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(encoder, peft.PeftModel)


def tower_of(encoder: nn.Module) -> VisionTransformer:
    """The open_clip VisionTransformer inside an encoder, wrapped by peft or plain."""
    return encoder.get_base_model() if wrapped_by_peft(encoder) else encoder


def embeds(tower: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """The tokens entering the first block (batch first): open_clip's `_embeds` from 2.27 on,
    written out for 2.26.1 (the floor), whose `forward` holds the same steps."""
    if hasattr(tower, "_embeds"):
        return tower._embeds(images)
    x = tower.conv1(images)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = tower.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
    x = torch.cat([cls, x], dim=1) + tower.positional_embedding.to(x.dtype)
    return tower.ln_pre(tower.patch_dropout(x))


def pool(tower: VisionTransformer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """open_clip's pooling after the transformer: its `_pool` from 2.27 on; 2.26.1 (the floor)
    writes the same steps inside `forward`."""
    if hasattr(tower, "_pool"):
        return tower._pool(x)
    if tower.attn_pool is not None:  # FetalCLIP has none; no CLS model here does
        raise NotImplementedError("a tower with attention pooling needs open_clip >= 2.27")
    if tower.final_ln_after_pool:
        pooled, tokens = tower._global_pool(x)
        return tower.ln_post(pooled), tokens
    return tower._global_pool(tower.ln_post(x))


def network_for(task: str, visual: VisionTransformer, config: dict, lora: bool = True) -> nn.Module:
    """The paper's model of `task` around a tower (fresh, loaded, or on the meta device): with
    peft's LoRA applied, or with `lora=False` the plain tower (to load a checkpoint into with
    lora.py's `load_folded`)."""
    if task == "classification":
        return FetalCLIPClassifier(visual, config["embed_dim"], lora=lora)
    if task == "segmentation":
        return FetalCLIPSegmenter(visual, lora=lora, filters=config.get("decoder_filters", SEG_INIT_FILTERS))
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


class FetalCLIPClassifier(nn.Module):
    """FetalCLIP_CLS: tower + LoRA, a linear head on the image embedding, one logit per frame."""

    task = "classification"

    def __init__(self, visual: VisionTransformer, embed_dim: int, lora: bool = True):
        super().__init__()
        self.encoder: nn.Module = with_lora(visual) if lora else visual
        self.classifier = nn.Linear(embed_dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(images)).squeeze(-1)


class FetalCLIPSegmenter(nn.Module):
    """FetalCLIP_SEG: frozen tower's hidden states (blocks n//i - 1, i = 1..4) into a UNETR decoder."""

    task = "segmentation"

    def __init__(self, visual: VisionTransformer, lora: bool = True, filters: int = SEG_INIT_FILTERS):
        super().__init__()
        self.encoder: nn.Module = with_lora(visual) if lora else visual
        self.decoder = UNETR(visual.transformer.width, 1, SEG_INPUT_CHANNELS, filters)

    def hidden_states(self, images: torch.Tensor) -> list[torch.Tensor]:
        tower = tower_of(self.encoder)
        blocks = tower.transformer.resblocks
        # the paper's rule; shallow test towers may pick one block twice
        picked = sorted(max(len(blocks) // i - 1, 0) for i in range(1, 5))
        captured: dict[int, torch.Tensor] = {}
        hooks = [blocks[i].register_forward_hook(lambda _m, _in, out, i=i: captured.__setitem__(i, out))
                 for i in set(picked)]
        # the paper's encoder never trains in SEG; a demo model trained from scratch trains it too
        trains = any(parameter.requires_grad for parameter in self.encoder.parameters())
        try:
            with torch.set_grad_enabled(trains and torch.is_grad_enabled()):
                self.encoder(images)
        finally:
            for hook in hooks:
                hook.remove()
        grid_h, grid_w = tower.grid_size
        states = []
        for i in picked:
            tokens = captured[i]
            if not tower.transformer.batch_first:
                tokens = tokens.transpose(0, 1)
            tokens = tokens[:, -grid_h * grid_w:]  # the patch tokens: CLS dropped
            grid = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, grid_h, grid_w)
            states.append(F.interpolate(grid, size=(SEG_GRID, SEG_GRID), mode="bilinear", align_corners=False))
        return states

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Mask logits, (n, 1, 224, 224)."""
        return self.decoder([images, *self.hidden_states(images)])


def merge_for_inference(model: nn.Module, convert=None) -> nn.Module:
    """Fold peft's LoRA adapters into the tower's weights (same outputs, plain ViT speed), in place.

    The out_proj adapters are dropped, not merged: the original forward pass never applied them.
    `convert(linear)`, if given, replaces each MLP linear layer right after its merge (e.g. by an
    int8 one), so that at most one merged float copy exists at a time; a model whose LoRA is
    already folded (loaded for scoring) has its MLP layers converted all the same.
    """
    encoder = encoder_of(model)
    if not wrapped_by_peft(encoder):
        if convert is not None:
            _convert_applied(encoder, convert)
        return model
    from peft.tuners.lora import LoraLayer
    # by name, not by reference: each merged float layer must be freed before the next is merged
    wrapped = [name for name, module in encoder.named_modules() if isinstance(module, LoraLayer)]
    for name in wrapped:
        module = cast(LoraLayer, encoder.get_submodule(name))
        base = cast(nn.Linear, module.get_base_layer())  # LoRA's targets are all linear layers
        source = base.weight.detach()  # its current memory: usually mapped from the weights file
        if not name.endswith("out_proj"):
            module.merge(safe_merge=True)  # into a new tensor: the weights file is never written
            if convert is not None:
                base = convert(base)
            release_pages(source)  # merged (and converted) elsewhere: its file pages can go
        parent_name, _, child = name.rpartition(".")
        setattr(encoder.get_submodule(parent_name), child, base)
        del module, base
    model.encoder = encoder.get_base_model()
    return model


def _convert_applied(tower: nn.Module, convert) -> None:
    """Replace the plain tower's MLP linear layers (LoRA's applied targets) by `convert`'s, one at a time."""
    for name in adapted_layers(tower):
        parent_name, _, child = name.rpartition(".")
        if child in APPLIED:
            setattr(tower.get_submodule(parent_name), child, convert(tower.get_submodule(name)))


def lora_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)


def trainable_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# The UNETR-style 2-D decoder of the paper's code (after tamasino52/UNETR), same module names.

class _Conv(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, groups: int = 1):
        super().__init__()
        self.block = nn.Conv2d(in_planes, out_planes, kernel_size, padding=(kernel_size - 1) // 2, groups=groups)

    def forward(self, x):
        return self.block(x)


class _Deconv(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, groups: int = 1):
        super().__init__()
        self.block = nn.ConvTranspose2d(in_planes, out_planes, kernel_size=2, stride=2, groups=groups)

    def forward(self, x):
        return self.block(x)


class _ConvBlock(nn.Module):
    """Depthwise conv, BN, ReLU, pointwise conv, BN, ReLU; optionally upsampled first."""

    def __init__(self, in_planes: int, out_planes: int, upsample: bool = False, kernel_size: int = 3):
        super().__init__()
        layers: list[nn.Module] = [_Deconv(in_planes, in_planes, groups=in_planes)] if upsample else []
        layers += [_Conv(in_planes, in_planes, kernel_size, groups=in_planes), nn.BatchNorm2d(in_planes),
                   nn.ReLU(True), _Conv(in_planes, out_planes, 1), nn.BatchNorm2d(out_planes), nn.ReLU(True)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return self.block(x)


class _Upsampler(nn.Module):
    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        self.block = nn.Sequential(_Deconv(in_planes, in_planes, groups=in_planes), _Conv(in_planes, out_planes, 1))

    def forward(self, x):
        return self.block(x)


def _up(in_planes, out_planes):
    return _ConvBlock(in_planes, out_planes, upsample=True)


class UNETR(nn.Module):
    def __init__(self, width: int, out_channels: int, in_channels: int, filters: int):
        super().__init__()
        f = filters
        self.decoder0 = nn.Sequential(_ConvBlock(in_channels, f), _ConvBlock(f, f))
        self.decoder3 = nn.Sequential(_up(width, 8 * f), _up(8 * f, 4 * f), _up(4 * f, 2 * f))
        self.decoder6 = nn.Sequential(_up(width, 8 * f), _up(8 * f, 4 * f))
        self.decoder9 = _up(width, 8 * f)
        self.decoder12_upsampler = _Upsampler(width, 8 * f)
        self.decoder9_upsampler = nn.Sequential(_ConvBlock(16 * f, 8 * f), _ConvBlock(8 * f, 8 * f),
                                                _ConvBlock(8 * f, 8 * f), _Upsampler(8 * f, 4 * f))
        self.decoder6_upsampler = nn.Sequential(_ConvBlock(8 * f, 4 * f), _ConvBlock(4 * f, 4 * f),
                                                _Upsampler(4 * f, 2 * f))
        self.decoder3_upsampler = nn.Sequential(_ConvBlock(4 * f, 2 * f), _ConvBlock(2 * f, 2 * f),
                                                _Upsampler(2 * f, f))
        self.decoder0_header = nn.Sequential(_ConvBlock(2 * f, f), _ConvBlock(f, f), _Conv(f, out_channels, 1))

    def forward(self, inputs):
        z0, z3, z6, z9, z12 = inputs
        z12 = self.decoder12_upsampler(z12)
        z9 = self.decoder9_upsampler(torch.cat([self.decoder9(z9), z12], dim=1))
        z6 = self.decoder6_upsampler(torch.cat([self.decoder6(z6), z9], dim=1))
        z3 = self.decoder3_upsampler(torch.cat([self.decoder3(z3), z6], dim=1))
        return self.decoder0_header(torch.cat([self.decoder0(z0), z3], dim=1))
