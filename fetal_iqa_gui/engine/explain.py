"""What the model used: a heat map of a CLS model's quality score over a frame, in the frame's own pixels.

Two methods, on the fp32 torch model, one frame at a time, only when asked:

- **Grad-CAM** on the patch tokens that enter the last block: the gradient of the good-frame
  logit with respect to those tokens, averaged over the patches into one weight per channel,
  weighs each patch's tokens; the positive part is the map (one forward and one backward pass).
  The tokens *entering* the last block (its first LayerNorm's output), not those leaving it: a
  model pooled on the class token (FetalCLIP) reads no patch token after its last block, so their
  gradient there is zero; before the last block's attention every patch still counts.
- **Attention rollout**: each block's attention averaged over its heads, with the residual path
  added (0.5 A + 0.5 I), multiplied through the blocks; the pooled token's row is the map (a
  class-token model: the class token's; an average-pooled one: the mean of the patch tokens' rows).

The patch grid (16 x 16 for FetalCLIP's 224 px and 14 px patches) is smoothed by a Gaussian of
1.25 patches (`SMOOTHING_PATCHES`: the relevance of a model that looks at the abdominal wall lies
on the ellipse's rim; smoothed, the peak lies on the abdomen the rim outlines) and mapped back through the
preprocessing (engine/preprocess.py: a centred zero-padded square, resized to 224), so the map
overlays the frame exactly. Attention rollout is the default: on synthetic good frames its peak
lies on the abdomen far more often than Grad-CAM's (`points_at`; benchmarks/bench_heatmap.py and
the README have the figures). Grad-CAM stays for comparison (`explain(..., GRAD_CAM)`).
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import nn

from ..base.errors import ModelLoadError
from ..model.networks import embeds, pool, tower_of
from ..model.tower import encoder_of
from .preprocess import frames_to_tensor

if TYPE_CHECKING:
    from .scoring import Engine

GRAD_CAM, ROLLOUT = "gradcam", "rollout"
METHODS = (GRAD_CAM, ROLLOUT)
DEFAULT_METHOD = ROLLOUT
DESCRIPTIONS = {GRAD_CAM: "Grad-CAM of the quality score",
                ROLLOUT: "attention rollout: where the model's attention went for the quality score"}
# The map is the patch grid smoothed by a Gaussian of this many patches (`smooth`). The demo model's
# relevance lies on the abdominal wall, the ellipse's rim: unsmoothed, the peak is one patch centre on
# the rim, as often just outside the ellipse as inside. Chosen on the benchmark's 12 cases
# (benchmarks/bench_heatmap.py) as the smallest, in quarter patches, with >= 95 % of peaks inside;
# the test's 4 other cases check it (README: the figures for 0, 1, 1.25 and 1.5 patches).
SMOOTHING_PATCHES = 1.25
CACHED_FRAMES = 32  # maps kept (the latest asked for): each about 3.5 MB at 744 x 562 with its colours


@dataclass(eq=False)
class HeatMap:
    """One frame's map: `values` (height, width) float32 in [0, 1], 1 where the model looked most."""

    values: np.ndarray
    method: str
    logit: float  # the model's good-frame logit on the frame, as the map was computed

    @property
    def peak(self) -> tuple[int, int]:
        """(x, y) of the map's maximum, in the frame's pixels."""
        y, x = np.unravel_index(int(np.argmax(self.values)), self.values.shape)
        return int(x), int(y)

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.method]

    @functools.cached_property
    def colours(self) -> np.ndarray:
        """The map as the overlay shows it (`overlay_colours`), made once."""
        return overlay_colours(self.values)


def explain(module: nn.Module, frame: np.ndarray, method: str = DEFAULT_METHOD,
            smoothing: float = SMOOTHING_PATCHES) -> HeatMap:
    """The heat map of a CLS module (fp32, CPU) on one grey uint8 frame (height, width)."""
    grid, logit = patch_relevance(module, frames_to_tensor(frame[None]), method, smoothing)
    return HeatMap(to_frame(grid[0], frame.shape[:2]), method, float(logit[0]))


def patch_relevance(module: nn.Module, images: torch.Tensor, method: str,
                    smoothing: float = SMOOTHING_PATCHES) -> tuple[np.ndarray, np.ndarray]:
    """(n, grid rows, grid columns) relevance in [0, 1] per patch, smoothed over `smoothing` patches
    (0: none), and the (n,) logits, for model input."""
    if method not in METHODS:
        raise ValueError(f"unknown heat map method {method!r}; expected one of {METHODS}")
    tower = tower_of(encoder_of(module))
    blocks = tower.transformer.resblocks
    with torch.no_grad():
        tokens = embeds(tower, images)
        attentions = []
        for block in blocks[:-1]:
            if method == ROLLOUT:
                attentions.append(_attention(block, tokens))
            tokens = _run_block(tower, block, tokens)
    last = blocks[-1]
    with torch.enable_grad():
        entering = last.ln_1(tokens).requires_grad_(method == GRAD_CAM)
        if method == ROLLOUT:
            attentions.append(_attention_of_normed(last, entering))
        logits = _head(module, tower, _finish_block(tower, last, tokens, entering))
        if method == GRAD_CAM:
            (gradient,) = torch.autograd.grad(logits.sum(), entering)
            relevance = _grad_cam(entering.detach(), gradient)
        else:
            relevance = _rollout(attentions, tower.pool_type)
    grid_h, grid_w = tower.grid_size
    grids = relevance.reshape(len(images), grid_h, grid_w).numpy().astype(np.float32)
    if smoothing > 0:
        grids = np.stack([smooth(_unit(grid), smoothing) for grid in grids])
    return np.stack([_unit(grid) for grid in grids]), logits.detach().numpy()


def smooth(grid: np.ndarray, sigma: float = SMOOTHING_PATCHES) -> np.ndarray:
    """The patch grid blurred by a Gaussian of `sigma` patches (the edge patches repeated beyond the
    grid): a ring of relevance on an object's edge becomes the object, not one patch of its rim."""
    return cv2.GaussianBlur(grid.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def _unit(grid: np.ndarray) -> np.ndarray:
    """`grid` rescaled to [0, 1]."""
    low = float(grid.min())
    return (grid - low) / max(float(grid.max()) - low, 1e-12)


def _run_block(tower, block, tokens: torch.Tensor) -> torch.Tensor:
    """One block as the tower runs it (tokens batch first, as `_embeds` gives them)."""
    if tower.transformer.batch_first:
        return block(tokens)
    return block(tokens.transpose(0, 1)).transpose(0, 1)


def _finish_block(tower, block, tokens: torch.Tensor, normed: torch.Tensor) -> torch.Tensor:
    """The block's output from its input and its first LayerNorm's output (the Grad-CAM target):
    the block's own forward, split where the gradient is taken."""
    attend = normed if tower.transformer.batch_first else normed.transpose(0, 1)
    attended = block.attention(q_x=attend)
    if not tower.transformer.batch_first:
        attended = attended.transpose(0, 1)
    x = tokens + block.ls_1(attended)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _head(module, tower, tokens: torch.Tensor) -> torch.Tensor:
    """The good-frame logits from the last block's output: the tower's pooling, projection, and the CLS head."""
    pooled, _ = pool(tower, tokens)
    if tower.proj is not None:
        pooled = pooled @ tower.proj
    return module.classifier(pooled).squeeze(-1)


def _grad_cam(tokens: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """(n, patches): ReLU of the patch tokens weighted by their mean gradient per channel."""
    patches, gradient = tokens[:, 1:], gradient[:, 1:]
    weights = gradient.mean(dim=1, keepdim=True)
    return torch.relu((patches * weights).sum(-1))


def _attention(block, tokens: torch.Tensor) -> torch.Tensor:
    return _attention_of_normed(block, block.ln_1(tokens))


def _attention_of_normed(block, normed: torch.Tensor) -> torch.Tensor:
    """(n, tokens, tokens): the block's attention probabilities, averaged over its heads."""
    attn = block.attn
    heads, width = attn.num_heads, attn.embed_dim
    q, k = torch.nn.functional.linear(normed.detach(), attn.in_proj_weight[:2 * width],
                                      attn.in_proj_bias[:2 * width]).chunk(2, dim=-1)
    n, length, _ = q.shape
    q = q.reshape(n, length, heads, -1).transpose(1, 2)
    k = k.reshape(n, length, heads, -1).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return scores.softmax(-1).mean(1)


def _rollout(attentions: list[torch.Tensor], pool_type: str) -> torch.Tensor:
    """(n, patches): the pooled token's share of each patch, through every block and its residual."""
    n, length, _ = attentions[0].shape
    eye = torch.eye(length)
    rolled = eye.expand(n, length, length)
    for attention in attentions:
        mixed = 0.5 * attention + 0.5 * eye
        rolled = (mixed / mixed.sum(-1, keepdim=True)) @ rolled
    pooled = rolled[:, 1:].mean(1) if pool_type == "avg" else rolled[:, 0]
    return pooled[:, 1:]


def to_frame(grid: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """A (grid rows, grid columns) map over the model's 224 x 224 input -> the frame's (height, width):
    the padded square the input was resized from, smoothly resized back, its padding cut off."""
    height, width = frame_shape
    size = max(height, width)
    top, left = (size - height) // 2, (size - width) // 2
    # each patch's value sits at its centre; bilinear between centres (OpenCV's half-pixel convention)
    square = cv2.resize(grid.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(square[top:top + height, left:left + width])


def points_at(heat: HeatMap, mask: np.ndarray, tolerance: float = 0.0) -> bool:
    """Whether the map's peak lies inside `mask` (the abdomen, 0/1), or within `tolerance` pixels of it."""
    x, y = heat.peak
    if mask[y, x]:
        return True
    if tolerance <= 0:
        return False
    outside = np.ascontiguousarray(mask == 0).astype(np.uint8)
    return float(cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[y, x]) <= tolerance


def patch_size_in_frame(module: nn.Module, frame_shape: tuple[int, int]) -> float:
    """One patch of the model's input, in the frame's pixels: the map's resolution."""
    grid_h, _ = tower_of(encoder_of(module)).grid_size
    return max(frame_shape) / grid_h


def pointing_game(module: nn.Module, frames: np.ndarray, masks: np.ndarray,
                  method: str = DEFAULT_METHOD) -> tuple[float, float]:
    """How often the map's peak lies on the abdomen, over grey frames (n, height, width) and their
    abdomen masks: (inside the mask, within half a patch of it). A patch is what the map resolves:
    the abdominal wall, which the models look at, lies on the mask's edge."""
    half_patch = patch_size_in_frame(module, frames.shape[1:]) / 2
    hits = []
    for frame, mask in zip(frames, masks):
        heat = explain(module, frame, method)
        hits.append((points_at(heat, mask > 0), points_at(heat, mask > 0, half_patch)))
    inside, near = np.mean(hits, axis=0) if hits else (float("nan"), float("nan"))
    return float(inside), float(near)


OVERLAY_OPACITY = 0.6  # at the map's peak; the opacity falls with the map, so the frame shows where it is low


def overlay_colours(values: np.ndarray) -> np.ndarray:
    """A map (height, width) in [0, 1] -> RGBA uint8 (height, width, 4): OpenCV's turbo colour map,
    its opacity rising with the value (the frame stays visible where the model did not look)."""
    index = np.clip(values * 255, 0, 255).astype(np.uint8)
    return _OVERLAY_TABLE[index]


def _overlay_table() -> np.ndarray:
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    rgb = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)[:, 0, ::-1]
    alpha = np.round(np.linspace(0, 255 * OVERLAY_OPACITY, 256)).astype(np.uint8)[:, None]
    return np.ascontiguousarray(np.concatenate([rgb, alpha], axis=1))


_OVERLAY_TABLE = _overlay_table()


def fp32_module(engine: Engine) -> nn.Module:
    """The engine's model as fp32 torch on the CPU: the engine's own module when it runs so (shared:
    a map only reads it), else a copy loaded from the model's files (an int8, bf16, GPU or
    compiled engine holds no such module)."""
    model = engine.model
    if model.is_segmentation:
        raise ValueError("heat maps explain a classification model's score")
    if (engine.backend, engine.precision, engine.device.type) == ("torch", "fp32", "cpu") and model.holds_module:
        return model.module
    if model.spec is None:
        raise ModelLoadError(None, "the model cannot be loaded again for its heat maps", "Open the model again.")
    from ..model.loading import load_model
    return load_model(model.spec).module


class Explainer:
    """Heat maps of one model, computed on request and kept per frame (the latest `CACHED_FRAMES`).

    Thread-safe: a worker thread computes while the window's thread reads the cache, which is
    locked only to be read or written (never while a map is computed: the window would wait).
    """

    def __init__(self, module: nn.Module, method: str = DEFAULT_METHOD):
        self.module, self.method = module, method
        self._cache: OrderedDict[tuple[str, int], HeatMap] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, case_key: str, frame: int) -> HeatMap | None:
        with self._lock:
            return self._cache.get((case_key, frame))

    def heat_map(self, case_key: str, frame: int, pixels: np.ndarray) -> HeatMap:
        """The map of `frame` (its `pixels`) of the case `case_key` names (its content hash)."""
        key = (case_key, frame)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        heat = explain(self.module, pixels, self.method)
        with self._lock:
            self._cache[key] = heat
            while len(self._cache) > CACHED_FRAMES:
                self._cache.popitem(last=False)
        return heat
