"""The classification model run on a fixed subset of its tokens: the patches that are black in
every frame of a sweep (outside the probe's field of view, or the square padding) left out.

Measured on the full ViT-L/14, 106 of a frame's 256 patch tokens are black in every frame of a
sweep: about 40 % of the model's work. `SubsetTower` runs open_clip's VisionTransformer exactly
as its own `forward` (`_embeds`, the transformer, `_pool`, `proj`) but keeps only the chosen
tokens once the positional embedding is added: every token keeps its own position, and with
every token kept the output is the tower's. The CLS token is always kept. The indices are fixed
(a buffer), so a converted model holds them as constants.

A SEG model is left on all its tokens: its decoder reads every patch token of four blocks as a
14 x 14 grid, which a subset would leave with holes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from .networks import FetalCLIPClassifier, pool, tower_of
from .tower import VisionTransformer


def black_patches(running_max: np.ndarray, patch_size: tuple[int, int]) -> np.ndarray:
    """Indices (row-major over the patch grid) of the patches whose pixels are all 0 in
    `running_max`, the (224, 224) pixelwise maximum of a sweep's resized frames."""
    patch_h, patch_w = patch_size
    grid_h, grid_w = running_max.shape[0] // patch_h, running_max.shape[1] // patch_w
    patches = running_max[:grid_h * patch_h, :grid_w * patch_w].reshape(grid_h, patch_h, grid_w, patch_w)
    return np.flatnonzero(patches.max(axis=(1, 3)).reshape(-1) == 0)


def kept_tokens(black: np.ndarray, grid_size: tuple[int, int]) -> np.ndarray:
    """The token indices a subset keeps: CLS (0), then every patch not in `black` (patch i is token i + 1)."""
    patches = np.setdiff1d(np.arange(grid_size[0] * grid_size[1]), black)
    return np.concatenate([[0], patches + 1]).astype(np.int64)


def subset_hash(keep: np.ndarray) -> str:
    """A short name for a token subset: part of the engine's variant and the compiled cache's key."""
    return hashlib.sha256(np.asarray(keep, np.int64).tobytes()).hexdigest()[:12]


class SubsetTower(nn.Module):
    """An open_clip VisionTransformer's forward pass on the tokens `keep` (CLS included) only."""

    keep: torch.Tensor  # a buffer

    def __init__(self, tower: VisionTransformer, keep: np.ndarray):
        super().__init__()
        self.tower = tower
        self.register_buffer("keep", torch.as_tensor(np.asarray(keep), dtype=torch.long), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        tower = self.tower
        # open_clip's `_embeds`, with the subset taken once every token has its position
        x = tower.conv1(images)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = tower.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1) + tower.positional_embedding.to(x.dtype)
        x = x.index_select(1, self.keep)
        x = tower.ln_pre(tower.patch_dropout(x))
        x = tower.transformer(x)
        pooled, tokens = pool(tower, x)
        if tower.proj is not None:
            pooled = pooled @ tower.proj
        return (pooled, tokens) if tower.output_tokens else pooled


class SubsetClassifier(nn.Module):
    """FetalCLIP_CLS (merged or not, any precision: it shares the model's layers) on a token subset."""

    def __init__(self, classifier: FetalCLIPClassifier, keep: np.ndarray):
        super().__init__()
        self.encoder = SubsetTower(tower_of(classifier.encoder), keep)
        self.classifier = classifier.classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(images)).squeeze(-1)


def on_subset(module: nn.Module, keep: np.ndarray) -> nn.Module:
    """`module` (FetalCLIP_CLS) on the tokens `keep`; refuses a SEG model (see the module's docstring)."""
    if not isinstance(module, FetalCLIPClassifier):
        raise TypeError(f"token subsets are for FetalCLIP_CLS, not {type(module).__name__}")
    subset = SubsetClassifier(module, keep)
    return subset.to(device=subset.encoder.tower.class_embedding.device)
