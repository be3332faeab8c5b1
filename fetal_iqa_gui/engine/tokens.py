"""Less work per frame: a CLS model skips the patches a sweep leaves black in every frame.

Which: the patch tokens whose pixels are 0 in every image frame of the case, padding frames left
out, judged on the resized uint8 frames the model sees (bicubic resizing has negative weights: a
resized maximum image would not say the same), once per case. The CLS token is always kept.

Trust: a subset scores only once it keeps fp32's decisions and best frame (`compiled.agrees`,
at least `compiled.AGREEMENT`) on CHECK_FRAMES frames spread over the case being scored, against
fp32 with every token; otherwise the case is scored with every token, and the user is told. A
verdict holds per (model, subset, engine variant): for the process, and on disk
(`cache.token_checks_file`), so that the check (fp32 on the full model: ~1.5 s a frame on a
ViT-L, 2 cores) runs once per computer; sweeps of one probe share their field of view, so most
cases reuse one subset.

A SEG model keeps every token (its decoder reads every patch token as a grid; model/token_subset.py).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from ..model.token_subset import black_patches, kept_tokens, on_subset, subset_hash
from .cache import keep_record, read_records, token_checks_file
from .compiled import AGREEMENT, CompiledModel, agrees, batched, case_frames
from .preprocess import INPUT_SIZE, resize_frames

if TYPE_CHECKING:
    from ..case.case import Case

log = logging.getLogger(__name__)

CHECK_FRAMES = 16  # spread over the case's images: fp32 on the full ViT-L runs them in ~25 s on 2 cores
RESIZE_CHUNK = 64  # frames resized at a time while the running maximum is taken

_verdicts: dict[str, "Verdict"] = {}  # `_key(...)` -> what its check found, for this process


@dataclass(frozen=True)
class Verdict:
    kept: bool
    frames: int  # how many frames were compared
    share: float  # of fp32's decisions kept
    same_best: bool  # fp32's best frame kept

    def describe(self) -> str:
        return (f"{100 * self.share:.1f} % of fp32's decisions kept on {self.frames} frames (needs "
                f"{100 * AGREEMENT:.1f} %), best frame {'kept' if self.same_best else 'moved'}")


@dataclass
class TokenSubset:
    """The tokens a case's frames are scored on, and what runs them (a torch module or a compiled model)."""

    keep: np.ndarray  # token indices, CLS (0) first
    run: torch.nn.Module | CompiledModel
    grid: int  # patch tokens of a frame

    @property
    def name(self) -> str:
        return subset_hash(self.keep)

    @property
    def dropped(self) -> int:
        return self.grid + 1 - len(self.keep)


def black_patch_indices(case: Case, patch_size: tuple[int, int]) -> np.ndarray:
    """The patches (row-major over the grid) black in every resized image frame of `case`."""
    frames = case.layout.image_frames()
    brightest = np.zeros((INPUT_SIZE, INPUT_SIZE), np.uint8)
    for start in range(0, len(frames), RESIZE_CHUNK):
        np.maximum(brightest, resize_frames(case.frames[frames[start:start + RESIZE_CHUNK]]).max(axis=0),
                   out=brightest)
    return black_patches(brightest, patch_size)


def choose_subset(engine, case: Case,
                  compile_subset: Callable[[np.ndarray, Case], CompiledModel] | None = None
                  ) -> tuple[TokenSubset | None, str | None]:
    """(the subset `engine` scores `case` on, None for every token; a notice for the user, or None).
    `compile_subset(keep, case)` converts the subset for a compiled engine."""
    patch_size, grid_size = engine.patches
    if len(case.layout.image_frames()) == 0:
        return None, None
    black = black_patch_indices(case, patch_size)
    if len(black) == 0:
        return None, None
    keep = kept_tokens(black, grid_size)
    grid = grid_size[0] * grid_size[1]
    key = _key(engine.model.identity, subset_hash(keep), engine.full_variant)
    verdict = remembered(key)
    if verdict is not None and not verdict.kept:
        log.info("skipping %d black patches changed the decisions before (%s): every token scores",
                 len(black), verdict.describe())
        return None, None
    run: torch.nn.Module | CompiledModel
    if engine.compiled is not None:
        assert compile_subset is not None, "a compiled engine's subsets are converted by `compile_subset`"
        run = compile_subset(keep, case)
    else:
        run = on_subset(engine.model.module, keep)
    subset = TokenSubset(keep, run, grid)
    if verdict is None:
        verdict = check(engine, subset, case)
        remember(key, verdict)
        log.info("skipping %d of %d patches %s fp32's decisions: %s", len(black), grid,
                 "keeps" if verdict.kept else "changes", verdict.describe())
        if not verdict.kept:
            return None, (f"Skipping the {len(black)} patches black in every frame changed the model's decisions "
                          f"({verdict.describe()}); scoring with every patch instead (slower).")
    return subset, None


def check(engine, subset: TokenSubset, case: Case) -> Verdict:
    """The subset on `engine` against fp32 with every token, on frames spread over `case`."""
    images = case_frames(case, CHECK_FRAMES)
    reference = _fp32_full(engine, images)
    candidate = batched(lambda part: engine.run_images(part, subset).float().cpu().numpy(), images,
                        engine.batch_size)
    share, same_best = agrees(engine.model, reference, candidate)
    return Verdict(share >= AGREEMENT and same_best, len(images), share, same_best)


def _fp32_full(engine, images: np.ndarray) -> np.ndarray:
    """fp32 with every token: the engine itself where it runs torch fp32, else the model loaded
    again for the check (the paper's path, LoRA unmerged), dropped after."""
    if engine.compiled is None and engine.precision == "fp32":
        return batched(lambda part: engine.run_images(part, None).float().cpu().numpy(), images, engine.batch_size)
    from ..model.loading import load_model
    module = load_model(engine.model.spec).module if engine.model.spec is not None else None
    if module is None:  # a model made in memory cannot be loaded again: the engine's own, every token
        return batched(lambda part: engine.run_images(part, None).float().cpu().numpy(), images, engine.batch_size)
    with torch.inference_mode():
        return batched(lambda part: module(torch.from_numpy(part)).float().numpy(), images, 4)


def _key(identity: str, subset: str, variant: str) -> str:
    return f"{identity}|{subset}|{variant}"


def remembered(key: str) -> Verdict | None:
    if key not in _verdicts:
        found = _read_checks().get(key)
        if found is not None:
            try:
                _verdicts[key] = Verdict(**found)
            except TypeError:  # another version's record: checked again
                pass
    return _verdicts.get(key)


def remember(key: str, verdict: Verdict) -> None:
    _verdicts[key] = verdict
    keep_record(token_checks_file(), key, asdict(verdict), "the token check")


def forget() -> None:
    """Check every subset again (after a model's files changed; between tests)."""
    _verdicts.clear()
    token_checks_file().unlink(missing_ok=True)


def _read_checks() -> dict:
    return read_records(token_checks_file())
