"""The scoring engine: a generator that scores every image frame of a sweep, batch by batch.

Order: coarse to fine (every 16th image frame, then every 8th), then the remaining frames by
priority: first those next to the highest scores so far (the best frame shows up early), and
among equals those farthest from any scored frame (the timeline keeps filling evenly). Each
frame is scored once, alone in its own right, so the final scores do not depend on the order.
The consumer (the GUI's worker or the CLI) stops it by no longer asking for batches.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import EngineChoiceError, FetalIqaError, ScoringError
from .model.int8 import quantize_model
from .model.loading import LoadedModel
from .model.runtime import COMPILED, CompiledModel, compile_model, installed, pick_backend, user_calibration
from .preprocess import frames_to_tensor, normalise_tensor, resize_frames
from .review import ScoredSweep
from .runtime import EngineSettings, default_threads, linux_cpu_flags
from .sweep import Sweep

log = logging.getLogger(__name__)

COARSE_STRIDES = (16, 8)
CUDA_PASSES_PER_STEP = 4  # forward passes queued on the GPU per yielded batch (one wait for the GPU each)
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}


@dataclass
class ScoreBatch:
    frames: np.ndarray  # frame indices into the volume
    scores: np.ndarray  # float32, one per frame
    masks: np.ndarray | None = None  # (n, 224, 224) bool, SEG models only
    notice: str | None = None  # something the user should know (e.g. a fallback to the CPU)


@dataclass
class Engine:
    """A model placed on a device at a precision: what actually runs the batches."""

    model: LoadedModel
    device: torch.device
    precision: str  # fp32, bf16, fp16 or int8
    batch_size: int
    backend: str = "torch"
    compiled: CompiledModel | None = None  # the converted model a compiled backend runs
    notice: str | None = None  # for the first batch: something the user should know about the engine

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    @property
    def description(self) -> str:
        if self.compiled is not None:
            return f"{self.device.type.upper()} {self.compiled.precision} ({self.backend})"
        return f"{self.device.type.upper()} {self.precision}"

    @property
    def step_size(self) -> int:
        """Frames per yielded batch: on CUDA several passes of `batch_size`, so that the CPU prepares
        the next pass while the GPU runs one, and waits for the GPU once per step."""
        return self.batch_size * (CUDA_PASSES_PER_STEP if self.device.type == "cuda" else 1)

    @property
    def variant(self) -> str:
        """How the model runs, as far as it changes the scores: part of the score cache's key."""
        precision = self.compiled.precision if self.compiled is not None else self.precision
        return f"{self.device.type}-{precision}-{self.backend}"

    def predict(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.device.type == "cuda":
            return self._predict_cuda(frames)
        images = frames_to_tensor(frames)
        if self.compiled is not None:
            return self.model.postprocess(torch.from_numpy(self.compiled(images.numpy())))
        # on the CPU the weights themselves are cast: autocast leaves MultiheadAttention's fast path
        with torch.inference_mode():
            return self.model.predict(images.to(self.device, self.dtype))

    def _predict_cuda(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """In passes of `batch_size`, queued without waiting: the CPU resizes the next pass while the
        GPU runs this one. Frames go up as pinned uint8 (copied without blocking) and are normalised
        there; the CPU waits once, when the outputs come back."""
        outputs = []
        with torch.inference_mode(), torch.autocast("cuda", dtype=self.dtype, enabled=self.dtype != torch.float32):
            for start in range(0, len(frames), self.batch_size):
                grey = torch.from_numpy(resize_frames(frames[start:start + self.batch_size])).pin_memory()
                outputs.append(self.model.module(normalise_tensor(grey.to(self.device, non_blocking=True))))
            return self.model.postprocess(torch.cat(outputs))


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is slower than fp32.

    Asked of torch itself (any system); should this torch lack the query, of /proc/cpuinfo on Linux.
    """
    queries = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(queries):
        return any(query() for query in queries)
    return bool({"avx512_bf16", "amx_bf16"} & linux_cpu_flags())


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EngineChoiceError(None, "no CUDA GPU is available on this computer", "Choose device 'cpu' or 'auto'.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise EngineChoiceError(None, "Apple's MPS is not available on this computer", "Choose device 'cpu' or 'auto'.")
    return torch.device(name)


def cuda_has_bf16() -> bool:
    """Whether this GPU computes bf16 natively (Ampere and later); older ones emulate it, slower than fp16."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


def pick_precision(precision: str, device: torch.device, backend: str = "torch") -> str:
    """The precision `auto` means here: on CUDA bf16 (fp16 on cards without native bf16); on a compiled CPU
    backend int8 (the fastest there, on AVX2 and AVX-512 alike); on torch on a CPU, bf16 where it
    is native (about 4x fp32), else int8 dynamic quantization of every linear layer, attention's
    included (bf16 without native support runs several times slower than fp32)."""
    if precision == "int8" and device.type != "cpu":
        raise EngineChoiceError(None, "int8 runs on the CPU only", "Choose precision 'auto' or 'bf16' on a GPU.")
    if precision == "bf16" and device.type == "cuda" and not cuda_has_bf16():
        raise EngineChoiceError(None, "this GPU has no bf16", "Choose precision 'fp16' or 'auto'.")
    if precision != "auto":
        return precision
    if backend in COMPILED:
        return "int8"
    if device.type == "cuda":
        return "bf16" if cuda_has_bf16() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "int8"
    return "fp32"


def make_engine(model: LoadedModel, settings: EngineSettings = EngineSettings(),
                notify: Callable[[str], None] | None = None, first_sweep: Callable[[], Sweep] | None = None) -> Engine:
    """Place the model (in place) on the chosen device, precision and backend. A compiled backend
    converts the model once (then reads it from the disk cache), telling `notify` first; OpenVINO's
    static int8 of a real model is calibrated on `settings.calibration`, else on `first_sweep()`
    (called only then: the sweep about to be scored), else on synthetic frames."""
    device = pick_device(settings.device)
    backend = pick_backend(settings.backend, device, settings.precision)
    precision = pick_precision(settings.precision, device, backend)
    threads = settings.threads or default_threads()
    notice = None
    if backend in COMPILED:
        check_backend(backend, device, precision)
        torch.set_num_threads(threads)
        try:
            compiled = compile_model(model, backend, precision, threads, notify, bf16_native=cpu_has_bf16(),
                                     calibration=user_calibration(settings.calibration, first_sweep))
        except FetalIqaError:  # e.g. an unreadable calibration sweep: the user's to fix, not a fallback
            raise
        except Exception as error:  # an exporter or runtime failure: torch still scores, if allowed
            if settings.backend != "auto":
                raise ScoringError(None, f"{backend} cannot run this model ({error})",
                                   "Choose backend 'torch' or 'auto'.") from error
            log.warning("%s failed (%s); scoring with torch", backend, error)
            notice = f"{backend} could not convert the model; scoring with torch instead (slower)."
            backend, precision = "torch", pick_precision(settings.precision, device)
        else:
            model.release()  # the compiled model scores: torch's copy of the weights is not needed
            batch = settings.batch_size or 8
            log.info("scoring on %s %s (%s), batch %d", device, compiled.precision, backend, batch)
            if compiled.converted_s is not None:  # also for front doors that passed no `notify`
                notice = (f"The model was converted for this CPU in {compiled.converted_s:.0f} s "
                          "(once: later starts read it from the cache).")
            return Engine(model, device, precision, batch, backend, compiled, notice)
    int8 = precision == "int8"  # CPU only: pick_precision refuses it elsewhere
    if int8:
        quantize_model(model.module)
    else:
        model.merge()
    if device.type == "cpu":
        torch.set_num_threads(threads)
        if not int8:
            model.module.to(device=device, dtype=_DTYPES[precision])
    else:
        try:
            model.module.to(device=device, dtype=torch.float32)  # autocast picks the precision per op
        except torch.cuda.OutOfMemoryError:
            model.module.to("cpu")
            raise ScoringError(None, "the model does not fit in the GPU's free memory",
                               "Close other programs that use the GPU, or choose device 'cpu'.") from None
    batch = settings.batch_size or (64 if device.type == "cuda" else 8)
    log.info("scoring on %s %s, batch %d", device, precision, batch)
    return Engine(model, device, precision, batch, notice=notice)


def check_backend(backend: str, device: torch.device, precision: str) -> None:
    """Refuse what a compiled backend cannot do, saying what to choose instead."""
    if not installed(backend):
        raise EngineChoiceError(None, f"{backend} is not installed",
                                "Install it with `pip install 'fetal-iqa[cpu]'`, or choose backend 'torch'.")
    if device.type != "cpu":
        raise EngineChoiceError(None, f"{backend} runs on the CPU here", "Choose device 'cpu', or backend 'torch'.")
    if precision == "fp16" or (backend == "onnxruntime" and precision == "bf16"):
        raise EngineChoiceError(None, f"{backend} does not run {precision} here",
                                "Choose precision 'int8', 'fp32' or 'auto', or backend 'torch'.")


def scoring_order_step(scores: np.ndarray, candidates: np.ndarray, count: int) -> np.ndarray:
    """The next `count` frames of `candidates` to score, given the scores so far (NaN = unscored).

    Priority: the higher score of the nearest scored frames on each side; ties (and regions of low
    scores) go to the frames farthest from any scored frame.
    """
    scored = np.flatnonzero(~np.isnan(scores))
    if len(scored) == 0:
        return candidates[np.linspace(0, len(candidates) - 1, min(count, len(candidates))).astype(int)]
    right = np.searchsorted(scored, candidates)
    left_idx = scored[np.clip(right - 1, 0, len(scored) - 1)]
    right_idx = scored[np.clip(right, 0, len(scored) - 1)]
    neighbour = np.maximum(scores[left_idx], scores[right_idx])
    distance = np.minimum(np.abs(candidates - left_idx), np.abs(right_idx - candidates))
    order = np.lexsort((-distance, -np.round(neighbour, 2)))
    return np.sort(candidates[order[:count]])


def score_sweep(engine: Engine, sweep: Sweep, known: np.ndarray | None = None) -> Iterator[ScoreBatch]:
    """Yield the scores of every image frame not in `known` (scores with NaN for unscored)."""
    scores = np.full(sweep.n_frames, np.nan, np.float32) if known is None else known.astype(np.float32).copy()
    image_frames = sweep.layout.image_frames()
    coarse = [image_frames[::stride] for stride in COARSE_STRIDES]
    while True:
        pending = image_frames[np.isnan(scores[image_frames])]
        if len(pending) == 0:
            return
        level = next((c[np.isnan(scores[c])] for c in coarse if np.isnan(scores[c]).any()), None)
        batch = level[:engine.step_size] if level is not None else scoring_order_step(scores, pending, engine.step_size)
        result = _predict_with_fallback(engine, sweep.frames[batch])
        if not np.isfinite(result.scores).all():  # NaN means "unscored" here: it would be asked for forever
            bad = batch[~np.isfinite(result.scores)]
            raise ScoringError(None, f"it gives no number (NaN) for frame {bad[0]}"
                               + (f" and {len(bad) - 1} more" if len(bad) > 1 else ""),
                               "The model file may be damaged, or trained with another fetal-iqa; choose another.")
        scores[batch] = result.scores
        result.frames = batch
        yield result


def run_scoring(engine: Engine, scored: ScoredSweep, use_cache: bool = True, on_batch=None,
                should_stop=None) -> ScoredSweep:
    """Score every image frame `scored` lacks, adding each batch to it; `on_batch(batch)` sees each,
    `should_stop()` is asked between batches. What was computed is cached, also when stopped."""
    try:
        for batch in score_sweep(engine, scored.sweep, scored.scores):
            scored.add(batch.frames, batch.scores, batch.masks)
            if on_batch:
                on_batch(batch)
            if should_stop and should_stop():
                break
    finally:
        if use_cache:
            scored.save_to_cache(engine.variant)
    return scored


def _predict_with_fallback(engine: Engine, frames: np.ndarray) -> ScoreBatch:
    """Out of GPU memory: halve the batch, then move to the CPU; say so once."""
    notice, engine.notice = engine.notice, None
    while True:
        try:
            parts = [engine.predict(frames[i:i + engine.step_size]) for i in range(0, len(frames), engine.step_size)]
        except torch.cuda.OutOfMemoryError:
            parts = None  # recovered below, once the error's traceback no longer holds the failed pass's tensors
        if parts is not None:
            break
        torch.cuda.empty_cache()
        if engine.batch_size > 1:
            engine.batch_size //= 2
            notice = f"GPU memory is short: batch size reduced to {engine.batch_size}."
        else:
            engine.device, engine.precision = torch.device("cpu"), "fp32"
            engine.model.module.to(device=engine.device, dtype=torch.float32)
            engine.batch_size = 8
            notice = "The GPU ran out of memory; scoring continues on the CPU (slower)."
        log.warning(notice)
    scores = np.concatenate([p[0] for p in parts]).astype(np.float32)
    masks = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    return ScoreBatch(np.empty(0, int), scores, masks, notice)


class Throughput:
    """Frames per second and time left, smoothed over the batches so far."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count

    @property
    def frames_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.frames_per_second
        return (self.total - self.done) / rate if rate > 0 else None
