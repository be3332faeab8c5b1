"""Many case files, headless: which files, where each case's outputs go, what counts as finished.

The command line's `score` drives these (and prints); they take plain values, not its options.

Outputs never replace an input, and never replace an existing file unless asked to (`force`),
with one exception that makes a resumable run (`out_dir`) resumable: the files an unfinished
attempt at the same case wrote. Each case keeps a marker, `out_dir/.done/<case>.json`, written
before its outputs (listing them, `finished: false`) and again after the last of them
(`finished: true`). A case counts as finished only when its marker says so, was made from the
same input by the same model, lists the outputs asked for now, and every file it lists is there
and not empty.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..case.acouslic import CHALLENGE_FRAME_JSON, CHALLENGE_MASK
from ..base.errors import FetalIqaError
from ..review.export import BELOW_THRESHOLD_MARK, FRAME_SUFFIXES, HEAT_MAP_SUFFIX, ModelInfo, frame_basename
from ..base.fileio import (NotRegularFile, atomic_write, check_replaceable, check_writable, read_regular,
                           remove_stale_parts, safe_name)
from ..review.dicom_out import planned_names as dicom_names, write_dicom
from ..review.scored_case import ScoredCase
from .summary import SUMMARY_COLUMNS, SUMMARY_CSV, summary_rows, write_summary  # noqa: F401 (SUMMARY_CSV: the run's)
from ..case.loading import IMAGE_2D_SUFFIXES, VOLUME_SUFFIXES
from ..case.case import case_id

DONE_DIR = ".done"  # the per-case markers of a resumable run
MARKER_VERSION = 1


class NameClash(FetalIqaError):
    """Two inputs whose outputs would share names: refused before anything is written."""

    doing = "Cannot score"
    exit_code = 2

    def _where(self) -> str:
        return "these files together"


class OutputRefused(FetalIqaError):
    """An output that would replace an input, or a result that is not this run's to replace."""

    doing = "Will not write"
    exit_code = 2

    def _where(self) -> str:  # the whole path: the user has to find it
        return f"'{self.path}'" if self.path else "the outputs"


@dataclass(frozen=True)
class CaseOutputs:
    """Where one case's outputs go (None: not asked for)."""

    scores_csv: Path | None = None
    export_dir: Path | None = None  # each sweep's top frame (marked in its name when it is not good)
    challenge_dir: Path | None = None  # the challenge's frame number and mask
    overwrite: bool = False  # replace any existing file (`--force`)
    source_name_only: bool = False  # exported sidecars name the sweep file without its folders
    blank_outside_image: bool = False  # exported frames are 0 outside the image (review/privacy.py)
    dicom_dir: Path | None = None  # each sweep's chosen frame as a DICOM image, and the Structured Report
    heat_maps: bool = False  # each exported frame's heat map beside it (`--heat-maps`)

    @property
    def blanks(self) -> bool:
        """Frames are exported, blanked: what a case must be able to do before it is scored."""
        return bool((self.export_dir or self.dicom_dir) and self.blank_outside_image)

    def requested(self) -> dict:
        """The outputs asked for, as a marker records them: where each kind goes (None: not asked for),
        and blanked frames when asked (an earlier run's frames as recorded do not count as those)."""
        kinds = {"scores_csv": self.scores_csv, "export_dir": self.export_dir, "challenge_dir": self.challenge_dir,
                 "dicom_dir": self.dicom_dir}
        requested = {name: _real(value) if value else None for name, value in kinds.items()}
        heat_maps = {"heat_maps": True} if self.heat_maps and self.export_dir else {}
        return requested | ({"blank_outside_image": True} if self.blanks else {}) | heat_maps


@dataclass(frozen=True)
class RunOutputs:
    """What a `score` run writes: one CSV (`out`) or a resumable folder of them (`out_dir`), and exports."""

    out: Path | None = None
    out_dir: Path | None = None
    export_dir: Path | None = None
    challenge_dir: Path | None = None
    force: bool = False  # replace existing outputs; with `out_dir`, redo finished cases too
    source_name_only: bool = False
    blank_outside_image: bool = False
    dicom_dir: Path | None = None
    heat_maps: bool = False

    def for_case(self, path: Path) -> CaseOutputs:
        scores = self.out or (self.out_dir / f"{output_name(path)}_scores.csv" if self.out_dir else None)
        return CaseOutputs(scores, self.export_dir, self.challenge_dir, self.force, self.source_name_only,
                           self.blank_outside_image, self.dicom_dir, self.heat_maps)

    def marker(self, path: Path) -> Path | None:
        return self.out_dir / DONE_DIR / f"{output_name(path)}.json" if self.out_dir else None

    def folders(self) -> list[Path]:
        named = [self.out.parent if self.out else None, self.out_dir, self.export_dir, self.challenge_dir, self.dicom_dir]
        return [folder for folder in named if folder is not None]


@dataclass(frozen=True)
class PlannedCase:
    """One input of a run, with what an earlier run left of it."""

    path: Path
    outputs: CaseOutputs
    marker: Path | None  # resumable runs only
    key: dict  # what its results depend on: the input and the model
    variant: str = ""  # how the model ran (device, precision): recorded, not compared
    finished: bool = False  # skip it: an earlier run wrote all that is asked for now
    ours: frozenset[str] = frozenset()  # files an earlier attempt at it listed: replaced when it is redone


def output_name(path: str | os.PathLike) -> str:
    """The case id as the outputs use it: a plain name inside their folder (never '', '..' or hidden)."""
    return safe_name(case_id(path))


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders searched (not recursively) for sweep files, or taken as a DICOM series.
    A file named twice is taken once."""
    found = []
    for path in paths:
        try:
            inside = sorted(p for p in path.iterdir() if p.is_file()
                            and p.name.lower().endswith(VOLUME_SUFFIXES + IMAGE_2D_SUFFIXES)) if path.is_dir() else []
        except OSError:  # a path in or of a folder we may not open: load_case says so, naming it
            inside = []
        volumes = [p for p in inside if not p.name.lower().endswith((".dcm", ".dicom"))]
        found += volumes if volumes else [path]
    unique, seen = [], set()
    for path in found:
        if _real(path) not in seen:
            seen.add(_real(path))
            unique.append(path)
    return unique


def check_case_ids(paths: list[Path]) -> None:
    """Outputs are named by case: two inputs with one name (in any letter case: macOS and Windows
    do not tell them apart) would overwrite or skip each other."""
    seen: dict[str, Path] = {}
    for path in paths:
        other = seen.setdefault(output_name(path).casefold(), path)
        if other is not path:
            raise NameClash(None, f"'{other}' and '{path}' would both write outputs named '{output_name(path)}'",
                            "Score them in separate runs, or rename one.")


def check_outputs(paths: list[Path], outputs: RunOutputs) -> None:
    """Refuse, before anything is written, an output that would replace an input or land inside an
    input DICOM folder, and, without `force`, one that would replace a file this run did not write."""
    inputs = {_real(path) for path in paths if not _is_dir(path)}
    series = [_real(path) for path in paths if _is_dir(path)]
    for target, option in _fixed_targets(paths, outputs):
        real = _real(target)
        folder = next((s for s in series if real == s or real.startswith(s.rstrip(os.sep) + os.sep)), None)
        if real in inputs or folder:
            where = "one of the inputs" if real in inputs else f"inside the input DICOM folder '{folder}'"
            raise OutputRefused(target, f"it is {where}", f"Choose another {option}.")
        try:
            if target not in (outputs.export_dir, outputs.dicom_dir):  # the folders among them
                check_replaceable(target)
        except NotRegularFile as error:  # never replaced, not even with --force
            raise OutputRefused(target, str(error), f"Choose another {option}.") from None
    if outputs.export_dir:
        _check_export_names(paths, outputs.export_dir)
    if outputs.force:
        return
    scores_option = "--out" if outputs.out else "--out-dir"
    for path in paths:
        marker_path = outputs.marker(path)
        marker = read_marker(marker_path) if marker_path else None
        ours = set(marker["outputs"]) if marker else set()
        scores = outputs.for_case(path).scores_csv
        files = [(scores, scores_option)] if scores else []
        files += [(file, "--challenge-output") for file in challenge_files(outputs.challenge_dir, path)]
        for file, option in files:
            if _exists(file) and _real(file) not in ours:
                raise OutputRefused(file, "it exists already",
                                    f"Give --force to replace it, or choose another {option}.")


def plan_cases(paths: list[Path], outputs: RunOutputs, model: ModelInfo, variant: str = "",
               threshold: float | None = None) -> list[PlannedCase]:
    """Each input with what an earlier run left of it. A case finished earlier from another input
    (same name) or with another model is refused, not replaced, unless `force`; one finished with
    the same model on another device or at another precision counts as finished."""
    cases, others = [], []
    for path in paths:
        case = outputs.for_case(path)
        key = case_key(path, model, threshold)
        marker_path = outputs.marker(path)
        marker = (read_marker(marker_path) if marker_path else None) or {}  # {}: nothing is known of the case
        listed = marker["outputs"] if marker else []
        present = [file for file in listed if _non_empty(file)]
        finished = bool(marker and marker["finished"])
        same = finished and all(marker.get(name) == value for name, value in key.items())
        covered = same and all(marker.get(name) == value for name, value in case.requested().items() if value)
        if finished and not same and present and not outputs.force:
            others.append(path)
        cases.append(PlannedCase(path, case, outputs.marker(path), key, variant,
                                 finished=covered and len(present) == len(listed) and not outputs.force,
                                 ours=frozenset(listed)))
    if others:
        names = ", ".join(f"'{output_name(path)}'" for path in others[:3]) + (", ..." if len(others) > 3 else "")
        cases_were = f"{len(others)} cases ({names}) were" if len(others) > 1 else f"the case {names} was"
        raise OutputRefused(outputs.out_dir, f"{cases_were} finished there earlier from another input file or "
                            "with another model",
                            "Give --force to redo them, replacing their outputs, or choose another --out-dir.")
    return cases


def prepare_folders(paths: list[Path], outputs: RunOutputs) -> None:
    """Before the first case: each output folder made and known to be writable (a read-only folder
    is said now, not after an hour of scoring), and what killed writes left there removed."""
    for folder in outputs.folders():
        check_writable(folder)
        remove_stale_parts(folder)
    if outputs.out_dir:
        remove_stale_parts(outputs.out_dir / DONE_DIR)
    if outputs.challenge_dir:
        for path in paths:
            remove_stale_parts(outputs.challenge_dir / output_name(path))


def case_key(path: Path, model: ModelInfo, threshold: float | None = None) -> dict:
    """What a case's results depend on: the input file (where, its size, when it changed), the model
    and the threshold (the user's, else the model's own)."""
    size: int | None
    changed: int | None
    try:
        stat = os.stat(path)
        size, changed = stat.st_size, stat.st_mtime_ns
    except OSError:  # gone, or unreadable: loading it will say so
        size = changed = None
    return {"source": _real(path), "source_size": size, "source_mtime_ns": changed,
            "model_identity": model.identity, "threshold": model.own_threshold if threshold is None else threshold}


def write_case_outputs(scored: ScoredCase, case: PlannedCase, explainer=None) -> list[dict]:
    """Write what the case asks for, its marker around them; return one summary row per probe sweep.
    `explainer` (engine/explain.py's): the exported frames' heat maps, when the outputs ask for them.

    Every file's name is known before the first is written: one that exists and is neither an
    earlier attempt's nor to be replaced (`force`) refuses the whole case.
    """
    outputs = case.outputs
    files = planned_files(scored, outputs)
    if not outputs.overwrite:
        taken = next((file for file in files if _exists(file) and _real(file) not in case.ours), None)
        if taken:
            raise OutputRefused(taken, "a file of that name exists already",
                                "Give --force to replace it, or choose another folder.")
    rows = summary_rows(scored)
    if case.marker:
        _write_marker(case, files, rows, finished=False)
    if outputs.scores_csv:
        scored.write_csv(outputs.scores_csv, overwrite=True)
    if outputs.export_dir:
        report = scored.export(_export_frames(scored), outputs.export_dir, overwrite=True,
                               source_name_only=outputs.source_name_only, blank=outputs.blank_outside_image,
                               explainer=explainer if outputs.heat_maps else None)
        if report.problems:
            raise report.problems[0]
    if outputs.challenge_dir:
        scored.write_challenge(outputs.challenge_dir, overwrite=True)
    if outputs.dicom_dir:
        write_dicom(scored, outputs.dicom_dir, case.variant, overwrite=True, blank=outputs.blank_outside_image)
    if case.marker:
        _write_marker(case, files, rows, finished=True)
    return rows


def planned_files(scored: ScoredCase, outputs: CaseOutputs) -> list[Path]:
    """Every file that writing `outputs` of this case creates."""
    files = [outputs.scores_csv] if outputs.scores_csv else []
    if outputs.export_dir:
        for frame in _export_frames(scored):
            base = frame_basename(scored.case, frame, good=bool(scored.is_good(frame)))
            suffixes = FRAME_SUFFIXES + ((HEAT_MAP_SUFFIX,) if outputs.heat_maps else ())
            files += [outputs.export_dir / f"{base}{suffix}" for suffix in suffixes]
    if outputs.dicom_dir:
        files += [outputs.dicom_dir / name for name in dicom_names(scored)]
    return files + challenge_files(outputs.challenge_dir, scored.case.source)


def challenge_files(challenge_dir: Path | None, path: Path) -> list[Path]:
    if challenge_dir is None:
        return []
    case_dir = challenge_dir / output_name(path)
    return [case_dir / CHALLENGE_MASK, case_dir / CHALLENGE_FRAME_JSON]


def read_marker(path: Path) -> dict | None:
    """A case's marker, or None where there is none or it is damaged (then nothing is known of the case)."""
    try:
        marker = json.loads(read_regular(path))
    except (OSError, ValueError):
        return None
    valid = (isinstance(marker, dict) and marker.get("version") == MARKER_VERSION
             and isinstance(marker.get("finished"), bool)
             and isinstance(marker.get("outputs"), list) and all(isinstance(f, str) for f in marker["outputs"])
             and isinstance(marker.get("rows"), list) and all(isinstance(r, dict) for r in marker["rows"]))
    return marker if valid else None


def rebuild_summary(out_dir: Path) -> None:
    """`summary.csv` from every finished case in `out_dir`, this run's and earlier ones'."""
    rows = []
    for path in sorted((out_dir / DONE_DIR).glob("*.json")):
        marker = read_marker(path)
        if marker and marker["finished"] and all(_non_empty(file) for file in marker["outputs"]):
            rows += [{column: row.get(column, "") for column in SUMMARY_COLUMNS} for row in marker["rows"]]
    write_summary(out_dir / SUMMARY_CSV, rows)


def _write_marker(case: PlannedCase, files: list[Path], rows: list[dict], finished: bool) -> None:
    assert case.marker is not None  # written for the cases of a resumable run only
    document = {"version": MARKER_VERSION, "case": output_name(case.path), "finished": finished, **case.key,
                "variant": case.variant, **case.outputs.requested(), "outputs": [_real(file) for file in files],
                "rows": rows}
    atomic_write(case.marker, lambda f: f.write(json.dumps(document, indent=1).encode()), overwrite=True)


def _export_frames(scored: ScoredCase) -> list[int]:
    """Each sweep's top frame, good or not (its name says which)."""
    return [best.candidate.frame for best in scored.best_per_sweep() if best.candidate]


def _fixed_targets(paths: list[Path], outputs: RunOutputs):
    """(file or folder, the option that names it) for every output whose name is known before scoring."""
    if outputs.out:
        yield outputs.out, "--out"
    if outputs.out_dir:
        yield outputs.out_dir / SUMMARY_CSV, "--out-dir"
        for path in paths:
            yield outputs.for_case(path).scores_csv, "--out-dir"
            yield outputs.marker(path), "--out-dir"
    if outputs.export_dir:
        yield outputs.export_dir, "--export-best"
    if outputs.dicom_dir:
        yield outputs.dicom_dir, "--dicom-out"
    for path in paths:
        for file in challenge_files(outputs.challenge_dir, path):
            yield file, "--challenge-output"


def _check_export_names(paths: list[Path], export_dir: Path) -> None:
    """An input in the export folder named as a case's exported frame would be (`force`) replaced by it."""
    names = {output_name(path) for path in paths}
    pattern = re.compile(r"(.+)_frame\d+_sweep\d+(?:%s)?(?:%s)" % (
        re.escape(BELOW_THRESHOLD_MARK), "|".join(re.escape(s) for s in FRAME_SUFFIXES)))
    folder = _real(export_dir)
    for path in paths:
        match = pattern.fullmatch(path.name)
        if match and match.group(1) in names and os.path.dirname(_real(path)) == folder:
            raise OutputRefused(path, "it is one of the inputs, and an exported frame would take its name",
                                "Choose another --export-best folder.")


def _real(path: str | os.PathLike) -> str:
    """The path with every symlink followed (never raises, unlike Path.resolve on a symlink loop)."""
    return os.path.realpath(path)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # inside an unreadable folder: loading it will say so
        return False


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _non_empty(path: str) -> bool:
    try:
        return os.path.isfile(path) and os.path.getsize(path) > 0
    except OSError:
        return False
