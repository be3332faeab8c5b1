"""What `auto` runs on a CPU, by measurement: the fastest engine this computer has for this size of
model, timed once and kept.

A CPU's feature flags do not say what is fast: bf16 was 4.7x fp32 on an AMD Zen 5, no faster than
fp32 on an Intel Xeon with the same avx512_bf16 flag, and 7x slower where it is emulated. So the
first time a model of a given size scores on a computer, each candidate that is installed (torch
fp32, bf16 and int8, OpenVINO int8) runs one transformer block of the model's shape (its width,
heads, MLP and tokens; random weights: speed does not depend on their values) on two frames' worth
of tokens, a few times. The block is nearly all of a ViT's work, so its rate ranks the whole
model's. The rates are kept in the user cache per computer (CPU, threads, library versions) and
model shape, so later starts choose at once; `doctor` and the window say what was chosen and why.

What is fast is not yet what is trusted: every non-fp32 path the measurement picks still passes the
engine's own checks against fp32 on the user's frames before it scores (static int8's calibration
check, a segmentation model's mask agreement), and falls back, saying so, when it does not.

FETAL_IQA_AUTO=backend:precision (e.g. torch:fp32) forces what `auto` means, for the tests (the
same code on every machine) and for running the suite as each choice.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, cast

import torch
from torch import nn

from .cache import keep_record, measured_engines_file, read_records
from .choice import installed, runtime_version

if TYPE_CHECKING:
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

log = logging.getLogger(__name__)

# in the order preferred when rates tie: the paper's precision first, then the closest to it
CANDIDATES = (("torch", "fp32"), ("openvino", "int8"), ("torch", "bf16"), ("torch", "int8"))
TIE = 1.10  # a candidate must be 10 % faster than a more faithful one to be chosen over it
FORMAT_VERSION = 1  # bump when the measurement changes: older rates are measured again
FORCE_VARIABLE = "FETAL_IQA_AUTO"
MEASURING = "Measuring which engine is fastest on this computer, once (a few seconds)…"


@dataclass(frozen=True)
class Shape:
    """What decides a ViT's speed: one block's width, heads, MLP width and tokens, and the blocks."""

    width: int
    heads: int
    mlp: int
    tokens: int
    layers: int

    @classmethod
    def of(cls, module: nn.Module) -> Shape:
        tower = _tower(module)
        block = tower.transformer.resblocks[0]
        grid_h, grid_w = tower.grid_size
        return cls(tower.transformer.width, block.attn.num_heads, _linear(block.mlp.c_fc).out_features,
                   grid_h * grid_w + 1, len(tower.transformer.resblocks))

    def __str__(self) -> str:
        return f"{self.layers} blocks of width {self.width}, {self.tokens} tokens"


@dataclass(frozen=True)
class Choice:
    """What `auto` chose, and on what grounds (for doctor, the log and the window)."""

    backend: str
    precision: str
    rates: dict[str, float]  # "backend precision" -> estimated frames/s of the whole model
    reason: str  # "measured now", "measured on <date>", or why it was forced

    def describe(self) -> str:
        rates = ", ".join(f"{name} {rate:.1f}" for name, rate in sorted(self.rates.items(), key=lambda kv: -kv[1]))
        return (f"{self.backend} {self.precision} ({self.reason}" + (f"; frames/s: {rates}" if rates else "") + ")")


def forced() -> tuple[str | None, str | None]:
    """(backend, precision) that FETAL_IQA_AUTO forces `auto` to mean; (None, None) when unset."""
    backend, _, precision = os.environ.get(FORCE_VARIABLE, "").partition(":")
    return backend or None, precision or None


def choose(module: nn.Module, threads: int, backend: str = "auto", precision: str = "auto",
           notify: Callable[[str], None] | None = None) -> Choice:
    """The fastest installed CPU engine for `module` (a FetalCLIP model) among those that fit what the
    user fixed (`backend` or `precision` other than auto): from the kept rates, measuring those missing."""
    forced_backend, forced_precision = forced()
    if forced_backend or forced_precision:
        return Choice(backend if backend != "auto" else forced_backend or "torch",
                      precision if precision != "auto" else forced_precision or "fp32", {},
                      f"forced by {FORCE_VARIABLE}")
    candidates = [c for c in CANDIDATES if backend in ("auto", c[0]) and precision in ("auto", c[1]) and installed(c[0])]
    if not candidates:  # fp16, or ONNX Runtime (chosen by name only): the rules' choice
        backend = backend if backend != "auto" else "torch"
        default = "int8" if backend == "onnxruntime" else "fp32"
        return Choice(backend, precision if precision != "auto" else default, {}, "the only engine for this choice")
    if len(candidates) == 1:  # nothing to choose between
        return Choice(*candidates[0], {}, "the only engine for this choice")
    shape = Shape.of(module)
    key = _key(shape, threads)
    kept = _read(key)
    missing = [c for c in candidates if _name(c) not in kept.get("rates", {})]
    if missing:
        if notify:
            notify(MEASURING)
        rates = dict(kept.get("rates", {}))
        for candidate in missing:
            rates[_name(candidate)] = measure(candidate, shape, threads)
            log.info("%s on this CPU: %.2f frames/s (%s)", _name(candidate), rates[_name(candidate)], shape)
        kept = {"rates": rates, "measured": time.strftime("%Y-%m-%d"), "shape": str(shape), "threads": threads}
        _write(key, kept)
        reason = "measured now"
    else:
        reason = f"measured on {kept.get('measured', 'an earlier day')}"
    rates = {name: rate for name, rate in kept["rates"].items() if name in map(_name, candidates)}
    return Choice(*fastest(candidates, rates), rates, reason)


def fastest(candidates: list[tuple[str, str]], rates: dict[str, float]) -> tuple[str, str]:
    """The candidate `auto` takes: each must beat the most faithful one before it by TIE."""
    best = candidates[0]
    for candidate in candidates[1:]:
        if rates[_name(candidate)] > TIE * rates[_name(best)]:
            best = candidate
    return best


def kept_choices() -> list[str]:
    """What was measured on this computer, one line per model shape and thread count (for doctor)."""
    lines = []
    for entry in read_records(measured_engines_file()).values():
        try:
            rates = entry["rates"]
            candidates = [c for c in CANDIDATES if _name(c) in rates and installed(c[0])]
            said = ", ".join(f"{name} {rate:.1f}" for name, rate in sorted(rates.items(), key=lambda kv: -kv[1]))
            lines.append(f"{_name(fastest(candidates, rates))} for {entry['shape']} at {entry['threads']} threads "
                         f"(frames/s: {said}; measured {entry['measured']})")
        except (KeyError, TypeError, IndexError, AttributeError, ValueError):
            continue
    return lines


# -- the measurement -----------------------------------------------------------------------------

def measure(candidate: tuple[str, str], shape: Shape, threads: int, frames: int = 2, repeats: int = 3) -> float:
    """Estimated frames/s of the whole model on `candidate`: the median time of one block of `shape`
    over `frames` frames' tokens, times the blocks."""
    from open_clip.transformer import ResidualAttentionBlock
    torch.manual_seed(0)
    block = ResidualAttentionBlock(shape.width, shape.heads, shape.mlp / shape.width, batch_first=True).eval()
    tokens = torch.randn(frames, shape.tokens, shape.width)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run = _runner(candidate, block, tokens, threads)
        run()  # warm-up: kernels chosen, caches filled
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)
    return frames / (sorted(times)[len(times) // 2] * shape.layers)


def _runner(candidate: tuple[str, str], block: ResidualAttentionBlock, tokens: torch.Tensor,
            threads: int) -> Callable[[], object]:
    backend, precision = candidate
    if backend == "openvino":
        return _openvino_runner(block, tokens, precision, threads)
    if precision == "int8":
        from .int8 import Int8Linear, quantize_attention
        block = copy.deepcopy(block)
        block.mlp.c_fc, block.mlp.c_proj = Int8Linear(block.mlp.c_fc), Int8Linear(block.mlp.c_proj)
        quantize_attention(block)
    elif precision == "bf16":
        block, tokens = block.to(torch.bfloat16), tokens.to(torch.bfloat16)

    def run():
        with torch.inference_mode():
            return block(tokens)
    return run


def _openvino_runner(block: ResidualAttentionBlock, tokens: torch.Tensor, precision: str, threads: int):
    """The block as the app runs OpenVINO: converted from torch, static int8 calibrated on a few token
    sets (NNCF), compiled with the app's own settings."""
    import openvino as ov

    with torch.no_grad():
        ov_model = ov.convert_model(block, example_input=tokens)
    if precision == "int8":
        from .compiled import quiet_nncf
        samples = [torch.randn_like(tokens).numpy() for _ in range(2)]
        with quiet_nncf() as nncf:
            ov_model = nncf.quantize(ov_model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                     subset_size=len(samples))
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    request = ov.Core().compile_model(ov_model, "CPU", config).create_infer_request()
    inputs = [tokens.numpy()]
    return lambda: request.infer(inputs)


# -- keeping the rates ---------------------------------------------------------------------------

def _key(shape: Shape, threads: int) -> str:
    from .cpu import CPU_FEATURES, cpu_model, linux_cpu_flags
    versions = [f"{backend} {runtime_version(backend)}" for backend in ("torch", "openvino") if installed(backend)]
    flags = sorted(set(CPU_FEATURES) & linux_cpu_flags())
    text = f"{FORMAT_VERSION}|{cpu_model()}|{flags}|{torch.backends.cpu.get_cpu_capability()}|{threads}|{versions}|{shape}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read(key: str) -> dict:
    entry = read_records(measured_engines_file()).get(key, {})
    rates = entry.get("rates", {}) if isinstance(entry, dict) else {}
    if isinstance(rates, dict) and all(isinstance(v, (int, float)) and v > 0 for v in rates.values()):
        return entry
    return {}  # none yet, or damaged: measured again


def _write(key: str, entry: dict) -> None:
    keep_record(measured_engines_file(), key, entry, "the engine measurement")


def _name(candidate: tuple[str, str]) -> str:
    return f"{candidate[0]} {candidate[1]}"


def _tower(module: nn.Module) -> VisionTransformer:
    from ..model.tower import encoder_of
    encoder = encoder_of(module)
    base_model = getattr(encoder, "get_base_model", None)  # peft's wrapper
    return base_model() if base_model is not None else encoder


def _linear(layer: nn.Module) -> nn.Linear:
    base_layer = getattr(layer, "get_base_layer", None)  # peft's adapted layer
    return cast(nn.Linear, base_layer() if base_layer is not None else layer)
