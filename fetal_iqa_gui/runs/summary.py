"""A run's `summary.csv`: one row per probe sweep of every finished case (its best frame, score,
AC, the model and the spacing), the rows as each case's marker keeps them (batch.py)."""

from __future__ import annotations

from pathlib import Path

from ..base.fileio import atomic_write, read_regular
from ..base.text import csv_bytes
from ..review.scored_case import ScoredCase

SUMMARY_CSV = "summary.csv"
SUMMARY_COLUMNS = ("file", "sweep", "best_frame", "score", "good", "ac_mm", "threshold", "model",
                   "ac_warning", "pixel_spacing_mm", "pixel_spacing_source")  # new columns go last


def summary_rows(scored: ScoredCase) -> list[dict]:
    rows, spacing = [], scored.case.spacing
    for best in scored.best_per_sweep():
        pick = best.candidate
        ac = scored.measurement_of(pick.frame) if pick and best.good else None
        rows.append({"file": scored.case.source.name, "sweep": best.sweep, "best_frame": pick.frame if pick else "",
                     "score": f"{pick.score:.4f}" if pick else "", "good": int(best.good),
                     "ac_mm": f"{ac.ac_mm:.1f}" if ac and ac.ac_mm is not None else "", "threshold": f"{scored.threshold:.4f}",
                     # which model decided "good": a summary may gather runs of different models
                     "model": scored.model.name if scored.model else "",
                     "ac_warning": (ac.warning or "") if ac else "",
                     "pixel_spacing_mm": (" x ".join(f"{v:.4f}" for v in spacing.mm) if spacing.mm is not None
                                          else "unknown"),
                     "pixel_spacing_source": spacing.source})
    return rows


def write_summary(path: Path, rows: list[dict]) -> None:
    data = csv_bytes(SUMMARY_COLUMNS, [[row.get(column, "") for column in SUMMARY_COLUMNS] for row in rows])
    try:
        if read_regular(path) == data:
            return  # a rerun that finished nothing new leaves the summary as it was
    except OSError:
        pass
    atomic_write(path, lambda f: f.write(data), overwrite=True)
