"""Many sweep files, headless: which files, what each case writes, the summary of a run.

The command line's `score` drives these (and prints); they take plain values, not its options.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .errors import FetalIqaError
from .fileio import atomic_write
from .review import ScoredSweep
from .sweep import IMAGE_2D_SUFFIXES, VOLUME_SUFFIXES, case_id

SUMMARY_CSV = "summary.csv"
SUMMARY_COLUMNS = ("file", "sweep", "best_frame", "score", "good", "ac_mm")


class NameClash(FetalIqaError):
    """Two inputs whose outputs would share names: refused before anything is written."""

    doing = "Cannot score"

    def _where(self) -> str:
        return "these files together"


@dataclass(frozen=True)
class CaseOutputs:
    """Where one case's outputs go (None: not asked for)."""

    scores_csv: Path | None = None
    export_dir: Path | None = None  # each sweep's top frame (marked in its name when it is not good)
    challenge_dir: Path | None = None  # the challenge's frame number and mask
    overwrite: bool = False
    source_name_only: bool = False  # exported sidecars name the sweep file without its folders


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders searched (not recursively) for sweep files, or taken as a DICOM series."""
    found = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir()
                            if p.is_file() and p.name.lower().endswith(VOLUME_SUFFIXES + IMAGE_2D_SUFFIXES))
            volumes = [p for p in inside if not p.name.lower().endswith((".dcm", ".dicom"))]
            found += volumes if volumes else [path]
        else:
            found.append(path)
    return found


def check_case_ids(paths: list[Path]) -> None:
    """Outputs are named by case id: two inputs with one id would overwrite or skip each other."""
    seen: dict[str, Path] = {}
    for path in paths:
        other = seen.setdefault(case_id(path), path)
        if other != path:
            raise NameClash(None, f"'{other}' and '{path}' would both write outputs named '{case_id(path)}'",
                            "Score them in separate runs, or rename one.")


def write_case_outputs(scored: ScoredSweep, outputs: CaseOutputs) -> list[dict]:
    """Write what `outputs` asks for; return one summary row per probe sweep."""
    if outputs.scores_csv:
        scored.write_csv(outputs.scores_csv, overwrite=outputs.overwrite)
    rows = summary_rows(scored)
    if outputs.export_dir:
        tops = [best.frame for best in scored.best_per_sweep() if best.candidate]
        report = scored.export(tops, outputs.export_dir, overwrite=outputs.overwrite,
                               source_name_only=outputs.source_name_only)
        if report.problems:
            raise report.problems[0]
    if outputs.challenge_dir:
        scored.write_challenge(outputs.challenge_dir, overwrite=outputs.overwrite)
    return rows


def summary_rows(scored: ScoredSweep) -> list[dict]:
    rows = []
    for best in scored.best_per_sweep():
        pick = best.candidate
        ac = scored.measurement_of(pick.frame) if pick and best.good else None
        rows.append({"file": scored.sweep.source.name, "sweep": best.sweep, "best_frame": pick.frame if pick else "",
                     "score": f"{pick.score:.4f}" if pick else "", "good": int(best.good),
                     "ac_mm": f"{ac.ac_mm:.1f}" if ac else ""})
    return rows


def write_summary(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda f: f.write(text.getvalue().encode()), overwrite=True)
