"""One case through the engine, the same for every front door: `fetal-iqa score`, the Ray workers,
and the window's scoring and scoring-ahead threads.

A job loads the case (unless it is given loaded), reads what the score cache holds for this model
and engine, scores what the cache lacks batch by batch, caches what it computed (also when
stopped), and writes the case's planned outputs (batch runs). Each front door keeps only its
reporting: it passes `on_open` (the case with its cached scores, before the first batch),
`on_batch`, and `should_stop` (asked between batches) to cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..case.case import Case
from ..case.loading import load_case
from ..engine import cache
from ..engine.preprocess import INPUT_SIZE
from ..review.export import ModelInfo
from ..review.privacy import image_area
from ..review.scored_case import ScoredCase

if TYPE_CHECKING:
    from ..engine.scoring import Engine, ScoreBatch
    from .batch import PlannedCase


@dataclass
class JobResult:
    scored: ScoredCase
    rows: list[dict] | None = None  # the summary rows, when outputs were written
    stopped: bool = False  # asked to stop before every frame was scored (nothing written then)


@dataclass
class CaseJob:
    engine: Engine
    case: Case | Path  # a loaded case, or the file to load
    threshold: float | None = None  # the user's; None: the model's own
    use_cache: bool = True
    plan: PlannedCase | None = None  # the outputs to write once scored

    def run(self, on_open: Callable[[ScoredCase], None] | None = None,
            on_batch: Callable[[ScoreBatch, ScoredCase], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> JobResult:
        from ..engine.scoring import score_case
        case = self.case if isinstance(self.case, Case) else load_case(self.case)
        if self.plan is not None and self.plan.outputs.blanks:
            image_area(case)  # a case that cannot be blanked is refused now, not after it is scored
        engine = self.engine.for_case(case)  # the tokens it is scored on, which the cache's key names
        model = ModelInfo.of(engine.model)
        scored = read_cached(case, model, engine.variant) if self.use_cache else ScoredCase(case, model)
        if self.threshold is not None:
            scored.threshold = self.threshold
        if on_open:
            on_open(scored)
        stopped = False
        try:
            for batch in score_case(engine, case, scored.scores):
                scored.add(batch.frames, batch.scores, batch.masks)
                if on_batch:
                    on_batch(batch, scored)
                if should_stop and should_stop() and scored.n_pending:
                    stopped = True
                    break
        finally:
            if self.use_cache:
                save_cached(scored, engine.variant)
        rows = None
        if self.plan is not None and not stopped:
            from .batch import write_case_outputs
            explainer = None
            if self.plan.outputs.heat_maps and self.plan.outputs.export_dir:
                from ..engine.explain import Explainer, fp32_module
                explainer = Explainer(fp32_module(engine))
            rows = write_case_outputs(scored, replace(self.plan, variant=engine.variant), explainer)
        return JobResult(scored, rows, stopped)


def read_cached(case: Case, model: ModelInfo, variant: str = "") -> ScoredCase:
    """The case with what the score cache holds for this model and engine (nothing scored when it
    holds nothing; a SEG model's scores without their masks are no use)."""
    scored = ScoredCase(case, model)
    if model.is_segmentation:
        scored.masks = np.zeros((case.n_frames, INPUT_SIZE, INPUT_SIZE), bool)
    found = cache.load_scores(case.content_hash, model.identity, case.n_frames, variant)
    if found is None:
        return scored
    scores, packed = found
    if model.is_segmentation and packed is None:
        return scored
    scored.scores = scores
    if packed is not None:
        scored.masks = np.unpackbits(packed, axis=1, count=INPUT_SIZE * INPUT_SIZE).reshape(
            -1, INPUT_SIZE, INPUT_SIZE).astype(bool)
    return scored


def save_cached(scored: ScoredCase, variant: str = "") -> None:
    assert scored.model is not None  # scored by a model: its identity keys the cache
    masks = scored.masks
    packed = None if masks is None else np.packbits(masks.reshape(len(masks), -1), axis=1)
    cache.save_scores(scored.case.content_hash, scored.model.identity, scored.scores, packed, variant)
