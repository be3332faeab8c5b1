"""A worklist: a folder of cases, each not scored, scored or reviewed, with what its review decided.

The review (the chosen frame and its AC per sweep, the measurements, the "reviewed" mark) is kept
beside the sweeps in one small JSON file per folder, so that reopening the folder, on this
computer or another, shows it again. Qt-free.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .batch import expand_paths
from ..base.errors import WriteError
from ..base.fileio import atomic_write, read_regular
from ..review.scored_case import ScoredCase
from ..case.case import case_id

log = logging.getLogger(__name__)

REVIEW_FILE = ".fetal-iqa-review.json"
REVIEW_VERSION = 1
NOT_SCORED, SCORING, SCORED, REVIEWED = "not scored", "scoring", "scored", "reviewed"


@dataclass
class CaseEntry:
    path: Path
    state: str = NOT_SCORED
    best_score: float | None = None
    review: dict = field(default_factory=dict)  # what `review_of` recorded when it was marked reviewed

    @property
    def case_id(self) -> str:
        return case_id(self.path)


class Worklist:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.saved = True  # False after a save failed: the file lags behind what this session decided
        self.cases = [CaseEntry(path) for path in expand_paths([self.folder]) if path != self.folder]
        if not self.cases and _holds_files(self.folder):  # a DICOM series folder is one case
            self.cases = [CaseEntry(self.folder)]
        self._load()

    @property
    def review_file(self) -> Path:
        return self.folder / REVIEW_FILE

    def index_of(self, path: Path) -> int | None:
        return next((i for i, case in enumerate(self.cases) if case.path == Path(path)), None)

    def next_to_score(self, after: int) -> CaseEntry | None:
        """The first case after `after` (wrapping) that has not been scored yet."""
        order = self.cases[after + 1:] + self.cases[:after + 1]
        return next((case for case in order if case.state == NOT_SCORED), None)

    def scored(self, path: Path, scored: ScoredCase) -> None:
        """Record the case's scoring and save; raises `WriteError` as `mark_reviewed` does."""
        entry = self.cases[self.index_of(path)]
        if scored.n_pending == 0 and entry.state != REVIEWED:
            entry.state = SCORED
        best = scored.best_frame()
        entry.best_score = best.score if best else None
        self._save()

    def mark_reviewed(self, path: Path, scored: ScoredCase) -> CaseEntry:
        """Record the review and save it beside the sweeps. A save that fails raises `WriteError`;
        what was decided stays in this worklist, and the next save (of any case) writes it too."""
        entry = self.cases[self.index_of(path)]
        entry.state, entry.review = REVIEWED, review_of(scored)
        best = scored.best_frame()
        entry.best_score = best.score if best else None
        self._save()
        return entry

    # -- the file beside the sweeps ------------------------------------------------------------

    def _load(self) -> None:
        try:
            document = json.loads(read_regular(self.review_file))
            kept = document["cases"] if document.get("version") == REVIEW_VERSION else {}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring the damaged review file %s: %s", self.review_file, error)
            return
        for entry in self.cases:
            saved = kept.get(entry.case_id) if isinstance(kept, dict) else None
            if isinstance(saved, dict) and saved.get("state") in (SCORED, REVIEWED):
                entry.state = saved["state"]
                entry.best_score = saved.get("best_score")
                entry.review = saved.get("review") or {}

    def _save(self) -> None:
        cases = {entry.case_id: {"state": entry.state, "best_score": entry.best_score, "review": entry.review}
                 for entry in self.cases if entry.state in (SCORED, REVIEWED)}
        document = {"version": REVIEW_VERSION, "cases": cases}
        try:
            atomic_write(self.review_file, lambda f: f.write(json.dumps(document, indent=2).encode()), overwrite=True)
        except WriteError as error:
            self.saved = False
            log.warning("could not save the review: %s", error)
            raise
        self.saved = True


def review_of(scored: ScoredCase) -> dict:
    """Per sweep: the chosen frame (the one measured on, else the best), its score, and its AC."""
    sweeps = []
    for best in scored.best_per_sweep():
        frame = scored.chosen_frame(best)
        calipers = [c.record() for c in scored.calipers.get(frame, [])] if frame is not None else []
        acs = [c["ac_mm"] for c in calipers if c["kind"] == "ellipse"]
        sweeps.append({"sweep": best.sweep, "frame": frame,
                       "score": None if frame is None else round(float(scored.scores[frame]), 6),
                       "good": None if frame is None else scored.is_good(frame),
                       "fully_scored": best.complete,  # "not good" of a partly scored sweep is not its verdict
                       "ac_mm": acs[0] if acs else None, "calipers": calipers})
    return {"reviewed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "threshold": scored.threshold, "model": scored.model.name if scored.model else None,
            "model_identity": scored.model.identity if scored.model else None, "sweeps": sweeps}


def restore_calipers(scored: ScoredCase, review: dict) -> None:
    """The measurements a review kept, back on their frames (after reopening the case)."""
    from ..review.calipers import DistanceCaliper, EllipseCaliper
    from ..case.measure import Ellipse
    for sweep in review.get("sweeps", []):
        kept = []
        for record in sweep.get("calipers", []):
            spacing = tuple(record["pixel_spacing_mm"])
            if record["kind"] == "ellipse":
                ellipse = Ellipse(tuple(record["center_px"]), tuple(record["semi_axes_px"]), record["angle_deg"])
                kept.append(EllipseCaliper(ellipse, spacing, record["by"], record.get("model_ac_mm")))
            else:
                kept.append(DistanceCaliper(tuple(record["start_px"]), tuple(record["end_px"]), spacing, record["by"]))
        if kept and sweep.get("frame") is not None:
            scored.set_calipers(sweep["frame"], kept)


def _holds_files(folder: Path) -> bool:
    try:
        return any(entry.is_file() and not entry.name.startswith(".") for entry in folder.iterdir())
    except OSError:
        return False
