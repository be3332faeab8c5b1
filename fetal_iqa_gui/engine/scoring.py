"""The scoring engine: a model placed as the engine settings say (`make_engine`, `load_engine`), and
a generator that scores every image frame of a case, batch by batch (`score_case`).

Order: coarse to fine (every 16th image frame, then every 8th), then the remaining frames by
priority: first those next to the highest scores so far (the best frame shows up early), and
among equals those farthest from any scored frame (the timeline keeps filling evenly). Each
frame is scored once, alone in its own right, so the final scores do not depend on the order.
The consumer (`runs.job.CaseJob`, for every front door) stops it by no longer asking for batches.
"""

from __future__ import annotations

import functools
import logging
import time
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator, cast

import numpy as np
import torch

from ..base.errors import FetalIqaError, ScoringError, choice
from ..case.case import Case
from ..model.loading import LoadedModel
from ..model.networks import tower_of
from ..model.tower import encoder_of
from ..model.token_subset import subset_hash
from . import agreement, measured
from .tokens import TokenSubset, choose_subset
from .choice import COMPILED, MEASURED, EngineSettings, check_backend, pick_backend, pick_device, pick_precision
from .compiled import CompiledModel, batched, compile_model, user_calibration
from .cpu import default_threads
from .int8 import quantize_model
from .preprocess import frames_to_tensor, normalise_tensor, resize_frames

if TYPE_CHECKING:
    from ..model.spec import ModelSpec

log = logging.getLogger(__name__)

COARSE_STRIDES = (16, 8)
CUDA_PASSES_PER_STEP = 4  # forward passes queued on the GPU per yielded batch (one wait for the GPU each)
_choosing = threading.Lock()  # one case's subset chosen (and checked) at a time
_telling = threading.Lock()  # the engine's own notice handed to one view
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
    chosen: measured.Choice | None = None  # what `auto` measured to choose it, where it did
    patches: tuple[tuple[int, int], tuple[int, int]] | None = None  # (patch size, grid): where black patches are skipped
    settings: EngineSettings | None = None  # what it was made from: a compiled token subset converts with them
    notify: Callable[[str], None] | None = None
    subset: TokenSubset | None = None  # a case's view (`for_case`): the tokens it is scored on; None: every token
    prepared_for: str | None = None  # that case's content hash
    # a case's content hash -> (its subset, a notice), chosen once per case; a subset's name -> its compiled model
    _subsets: dict = field(default_factory=dict, repr=False)

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    @property
    def description(self) -> str:
        """What runs, as the user is shown it: "CPU int8 (openvino; auto: fastest here; 106 black patches skipped)"."""
        run = self.subset.run if self.subset is not None else self.compiled
        notes = [self.backend] * (self.compiled is not None) + ["auto: fastest here"] * bool(self.chosen and self.chosen.rates)
        notes += [f"{self.subset.dropped} black patches skipped"] if self.subset is not None else []
        precision = run.precision if isinstance(run, CompiledModel) else self.precision
        return f"{self.device.type.upper()} {precision}" + (f" ({'; '.join(notes)})" if notes else "")

    @property
    def step_size(self) -> int:
        """Frames per yielded batch: on CUDA several passes of `batch_size`, so that the CPU prepares
        the next pass while the GPU runs one, and waits for the GPU once per step."""
        return self.batch_size * (CUDA_PASSES_PER_STEP if self.device.type == "cuda" else 1)

    @property
    def full_variant(self) -> str:
        """How the model runs on every token, as far as it changes the scores."""
        precision = self.compiled.precision if self.compiled is not None else self.precision
        return f"{self.device.type}-{precision}-{self.backend}"

    @property
    def variant(self) -> str:
        """How the model runs, as far as it changes the scores: part of the score cache's key. It
        names the token subset of a case's view, where one scores (see `for_case`)."""
        return self.full_variant + (f"-tokens{self.subset.name}" if self.subset is not None else "")

    def for_case(self, case: Case) -> Engine:
        """The engine as it scores `case`: on the tokens its frames leave (engine/tokens.py), which
        its `variant` (the score cache's key) names. A view sharing the model, made before the
        case's cached scores are looked up; itself where black patches are kept. A view of its own
        per case: the window scores one case ahead while another is scored."""
        if self.patches is None or self.prepared_for == case.content_hash:
            return self
        if case.content_hash not in self._subsets:  # once per case, and only then waiting for another's check
            with _choosing:
                if case.content_hash not in self._subsets:
                    self._subsets[case.content_hash] = chosen = choose_subset(self, case, self._compile_subset)
                    if chosen[1]:
                        log.warning(chosen[1])
        subset, notice = self._subsets[case.content_hash]
        with _telling:
            told, self.notice = self.notice, None  # the engine's own notice goes with the first case's view
        notice = " ".join(part for part in (told, notice) if part) or None
        return replace(self, subset=subset, prepared_for=case.content_hash, notice=notice)

    def _compile_subset(self, keep: np.ndarray, case: Case) -> CompiledModel:
        """The compiled model on the tokens `keep`: converted (or read from the disk cache) once per
        engine, as the cases of one probe share their subset."""
        name = subset_hash(keep)
        if name not in self._subsets:
            settings = self.settings or EngineSettings()
            self._subsets[name] = compile_model(self.model, self.backend, self.precision,
                                                settings.threads or default_threads(), self.notify,
                                                calibration=user_calibration(settings.calibration, lambda: case),
                                                tokens=keep)
        return self._subsets[name]

    def predict(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self.model.postprocess(self.raw(frames))

    def raw(self, frames: np.ndarray) -> torch.Tensor:
        """The model's raw outputs (logits, or mask logits) for uint8 frames, on the view's tokens (every token but in a case's view)."""
        if self.device.type == "cuda":
            return self._raw_cuda(frames)
        return self.run_images(frames_to_tensor(frames), self.subset)

    def run_images(self, images, subset: TokenSubset | None = None) -> torch.Tensor:
        """Raw outputs for model input ((n, 3, 224, 224) float, array or tensor), on every token or on `subset`'s."""
        run = self.compiled if subset is None else subset.run
        if isinstance(run, CompiledModel):
            return torch.from_numpy(run(np.asarray(images)))
        module = self.model.module if run is None else run
        images = torch.as_tensor(images)
        if self.device.type == "cuda":
            with torch.inference_mode(), torch.autocast("cuda", dtype=self.dtype,
                                                        enabled=self.dtype != torch.float32):
                return module(images.to(self.device)).float().cpu()
        # on the CPU the weights themselves are cast: autocast leaves MultiheadAttention's fast path
        with torch.inference_mode():
            return module(images.to(self.device, self.dtype))

    def _raw_cuda(self, frames: np.ndarray) -> torch.Tensor:
        """In passes of `batch_size`, queued without waiting: the CPU resizes the next pass while the
        GPU runs this one. Frames go up as pinned uint8 (copied without blocking) and are normalised
        there; the CPU waits once, when the outputs come back."""
        outputs = []
        # a CUDA engine runs torch modules only: compiled models are for the CPU
        module = cast(torch.nn.Module, self.model.module if self.subset is None else self.subset.run)
        with torch.inference_mode(), torch.autocast("cuda", dtype=self.dtype, enabled=self.dtype != torch.float32):
            for start in range(0, len(frames), self.batch_size):
                grey = torch.from_numpy(resize_frames(frames[start:start + self.batch_size])).pin_memory()
                outputs.append(module(normalise_tensor(grey.to(self.device, non_blocking=True))))
            return torch.cat(outputs).float().cpu()


def load_engine(spec: ModelSpec, settings: EngineSettings = EngineSettings(),
                notify: Callable[[str], None] | None = None, first_case: Callable[[], Case] | None = None) -> Engine:
    """The model `spec` names, loaded and placed as `settings` say: what every front door scores with."""
    from ..model.loading import load_model
    return make_engine(load_model(spec), settings, notify, first_case)


def make_engine(model: LoadedModel, settings: EngineSettings = EngineSettings(),
                notify: Callable[[str], None] | None = None, first_case: Callable[[], Case] | None = None) -> Engine:
    """Place the model (in place) on the chosen device, precision and backend. A compiled backend
    converts the model once (then reads it from the disk cache), telling `notify` first; OpenVINO's
    static int8 of a real model is calibrated on `settings.calibration`, else on `first_case()`
    (called only then: the case about to be scored), else on synthetic frames. A SEG model's fast
    path is used only if it keeps fp32's masks on those frames (`agreement`); else fp32 scores."""
    device = pick_device(settings.device)
    backend, precision, chosen = _choose(model, device, settings, settings.backend, notify)
    patches = _patches(model) if settings.black_patches == "skip" else None
    first_case = functools.cache(first_case) if first_case else None  # made once: the check and calibration share it
    variant = f"{device.type}-{precision}-{backend}"
    check = agreement.needs_check(model, precision, backend)
    verdict = agreement.remembered(model, variant) if check else None
    if check and verdict is None:
        frames, where = agreement.check_frames(settings.calibration, first_case)
        reference = _fp32_outputs(model, frames)
    engine = None  # a remembered verdict against the fast path: it is not even placed
    if verdict is None or verdict.kept:
        engine = _place(model, device, backend, precision, settings, notify, first_case)
        if check and verdict is None:
            candidate = _outputs(engine, frames)
            verdict = agreement.compare(model, reference, candidate, where)
            agreement.remember(model, variant, verdict)
            log.info("%s %s fp32's results: %s", engine.description, "keeps" if verdict.kept else "changes",
                     verdict.describe())
        if verdict is None or verdict.kept:
            engine.chosen = chosen
            engine.patches, engine.settings, engine.notify = patches, settings, notify
            return engine
    what = engine.description if engine else f"{device.type.upper()} {precision} ({backend})"
    changed = "the segmentation model's masks" if model.is_segmentation else "the model's decisions"
    log.warning("%s changes %s (%s): scoring in fp32", what, changed, verdict.describe())
    if device.type == "cpu":
        model.release()  # cast or quantized in place: fp32 comes back from the model's files
    engine = _place(model, device, "torch", "fp32", settings, notify, first_case)
    engine.notice = (f"{what} changed {changed} ({verdict.describe()}); scoring in fp32 instead, which keeps "
                     f"them (slower).")
    return engine


def _choose(model: LoadedModel, device: torch.device, settings: EngineSettings, backend: str,
            notify) -> tuple[str, str, measured.Choice | None]:
    """(backend, precision, what `auto` measured) for `settings` on `device` (`backend`: the
    settings' or the one a fallback allows). On a CPU whatever is left to `auto` is the fastest
    installed engine that fits the rest, as timed on this computer (engine/measured.py)."""
    backend = pick_backend(backend, device, settings.precision)
    precision = pick_precision(settings.precision, device, backend)
    if MEASURED not in (backend, precision):
        return backend, precision, None
    chosen = measured.choose(model.module, settings.threads or default_threads(),
                             "auto" if backend == MEASURED else backend,
                             "auto" if precision == MEASURED else precision, notify)
    log.info("auto on this CPU: %s", chosen.describe())
    return chosen.backend, chosen.precision, chosen


def _patches(model: LoadedModel) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(patch size, grid) of a CLS model's tower, where black patches can be skipped; None for SEG,
    whose decoder reads every patch token as a grid (model/token_subset.py)."""
    if model.is_segmentation:
        return None
    tower = tower_of(encoder_of(model.module))
    (patch_h, patch_w), (grid_h, grid_w) = tower.patch_size, tower.grid_size
    return (patch_h, patch_w), (grid_h, grid_w)


def _fp32_outputs(model: LoadedModel, frames: np.ndarray) -> np.ndarray:
    """fp32 on `frames` (LoRA folded as the model loaded: the paper's outputs within float rounding):
    what a fast path is checked against."""
    module = model.module
    device = next(module.parameters()).device
    with torch.inference_mode():
        return batched(lambda part: module(frames_to_tensor(part).to(device)).float().cpu().numpy(), frames, 4)


def _outputs(engine: Engine, frames: np.ndarray) -> np.ndarray:
    return batched(lambda part: engine.raw(part).float().cpu().numpy(), frames, engine.batch_size)


def _place(model: LoadedModel, device: torch.device, backend: str, precision: str, settings: EngineSettings,
           notify, first_case) -> Engine:
    threads = settings.threads or default_threads()
    notice = None
    if backend in COMPILED:
        check_backend(backend, device, precision)
        torch.set_num_threads(threads)
        try:
            compiled = compile_model(model, backend, precision, threads, notify,
                                     calibration=user_calibration(settings.calibration, first_case))
        except FetalIqaError:  # e.g. an unreadable calibration sweep: the user's to fix, not a fallback
            raise
        except Exception as error:  # an exporter or runtime failure: torch still scores, if allowed
            if settings.backend != "auto":
                raise ScoringError(None, f"{backend} cannot run this model ({error})",
                                   f"Choose {choice('backend')} 'torch' or 'auto'.") from error
            log.warning("%s failed (%s); scoring with torch", backend, error)
            notice = f"{backend} could not convert the model; scoring with torch instead (slower)."
            backend, precision, _ = _choose(model, device, settings, "torch", None)
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
                               f"Close other programs that use the GPU, or choose {choice('device')} 'cpu'.") from None
    batch = settings.batch_size or (64 if device.type == "cuda" else 8)
    log.info("scoring on %s %s, batch %d", device, precision, batch)
    return Engine(model, device, precision, batch, notice=notice)


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


def score_case(engine: Engine, case: Case, known: np.ndarray | None = None) -> Iterator[ScoreBatch]:
    """Yield the scores of every image frame not in `known` (scores with NaN for unscored)."""
    engine = engine.for_case(case)  # itself when the caller made the view (to read the cache)
    scores = np.full(case.n_frames, np.nan, np.float32) if known is None else known.astype(np.float32).copy()
    image_frames = case.layout.image_frames()
    coarse = [image_frames[::stride] for stride in COARSE_STRIDES]
    while True:
        pending = image_frames[np.isnan(scores[image_frames])]
        if len(pending) == 0:
            return
        level = next((c[np.isnan(scores[c])] for c in coarse if np.isnan(scores[c]).any()), None)
        batch = level[:engine.step_size] if level is not None else scoring_order_step(scores, pending, engine.step_size)
        result = _predict_with_fallback(engine, case.frames[batch])
        if not np.isfinite(result.scores).all():  # NaN means "unscored" here: it would be asked for forever
            bad = batch[~np.isfinite(result.scores)]
            raise ScoringError(None, f"it gives no number (NaN) for frame {bad[0]}"
                               + (f" and {len(bad) - 1} more" if len(bad) > 1 else ""),
                               "The model file may be damaged, or trained with another fetal-iqa; choose another.")
        scores[batch] = result.scores
        result.frames = batch
        yield result


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
            # its layers are the model's; its token indices move too (a compiled one is on the CPU already)
            if engine.subset is not None and isinstance(engine.subset.run, torch.nn.Module):
                engine.subset.run.to(device=engine.device)
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
