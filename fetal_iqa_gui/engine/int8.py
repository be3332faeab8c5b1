"""Dynamic int8 inference on a CPU: every linear layer of the tower, attention's included.

The fallback where no compiled runtime (ONNX Runtime, OpenVINO) is installed: on a CPU without
native bf16 the fastest torch path that keeps fp32's decisions (the engine's agreement check):
weights are int8 per output channel, activations are quantised on the fly.
torch's MultiheadAttention reads its projection weights directly, so it cannot take quantised
layers; `Int8Attention` does the same computation with them and PyTorch's fused attention.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..model.networks import merge_for_inference
from ..model.tower import release_pages

# torch announces the end of quantised tensors: this path is the fallback where ONNX Runtime and
# OpenVINO are missing (see runtime.py). Only that warning, only from this module: a filter set
# once at import, as `catch_warnings` around each call is not thread-safe (scoring runs in a thread).
warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
                        category=UserWarning, module=__name__)


class Int8Linear(nn.Module):
    """A linear layer with int8 weights (symmetric, one scale per output channel) whose input is
    quantised on the fly, run by PyTorch's quantised CPU kernels (fbgemm or oneDNN).

    The outputs are those of torch's dynamic `quantize_dynamic` layers, bit for bit; converting a
    ViT-L is about 15 % faster than through their `from_float`, and only the kernels are used, not
    the `torch.ao` module classes that are moving to torchao.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scale = (weight.abs().amax(dim=1) / 127.5).clamp(min=torch.finfo(torch.float32).eps).double()
        zero = torch.zeros(len(scale), dtype=torch.long)
        qweight = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()  # not a view of the file
        self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range: 7-bit activations, as torch's own layers use on x86 to avoid overflow
        return torch.ops.quantized.linear_dynamic(x, self.packed, reduce_range=True).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


class Int8Attention(nn.Module):
    """Self-attention as `nn.MultiheadAttention` computes it in eval mode, with int8 projections."""

    def __init__(self, attention: nn.MultiheadAttention):
        super().__init__()
        if attention.in_proj_weight is None or attention.bias_k is not None or attention.add_zero_attn:
            raise ValueError("only plain self-attention (one packed input projection) can be converted")
        self.heads = attention.num_heads
        self.batch_first = attention.batch_first
        width = attention.embed_dim
        packed = nn.Linear(width, 3 * width, bias=attention.in_proj_bias is not None, device="meta")
        packed.weight = attention.in_proj_weight
        if attention.in_proj_bias is not None:
            packed.bias = attention.in_proj_bias
        self.in_proj = Int8Linear(packed)
        self.out_proj = Int8Linear(attention.out_proj)
        release_pages(attention.in_proj_weight, attention.out_proj.weight)

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None):
        """The call signature open_clip uses; key and value must be the query (self-attention)."""
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise ValueError("Int8Attention computes self-attention only")
        x = query if self.batch_first else query.transpose(0, 1)
        n, length, width = x.shape
        qkv = self.in_proj(x).view(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.to(qkv.dtype)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, width))
        return (out if self.batch_first else out.transpose(0, 1)), None


def quantize_model(model: nn.Module) -> None:
    """The whole int8 conversion of a FetalCLIP model, in place and layer by layer: LoRA merged into
    each MLP layer just before it is quantised, then attention, then the weights file let go."""
    merge_for_inference(model, Int8Linear)
    quantize_attention(model)
    release_weights_file(model)


def quantize_attention(module: nn.Module) -> None:
    """Replace every `nn.MultiheadAttention` inside `module` by an `Int8Attention`, one at a time."""
    names = [name for name, child in module.named_modules() if isinstance(child, nn.MultiheadAttention)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, Int8Attention(getattr(parent, child)))


def release_weights_file(module: nn.Module) -> None:
    """Copy the float tensors left after quantisation (norms, embeddings, head: a few MB) into
    memory of their own, so that nothing references the memory-mapped weights file any more and
    its pages (the whole float model) leave the process."""
    with torch.no_grad():
        for child in module.modules():
            for tensor in list(child.parameters(recurse=False)) + list(child.buffers(recurse=False)):
                tensor.data = tensor.data.clone()
