"""A worklist: a folder of cases, each not scored, scored or reviewed, with what its review decided.

The review (the chosen frame and its AC per sweep, the measurements, the "reviewed" mark) is kept
beside the sweeps in one small JSON file per folder, so that reopening the folder, on this
computer or another, shows it again; several sessions may share it (`review_record`). A record
belongs to a sweep's content: the worklist shows it for a file whose size and time it was saved
with, and the content hash decides once the case is opened or scored. Qt-free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .batch import expand_paths
from .review_record import REVIEW_FILE, REVIEWED, SCORED, Contents, ReviewFile, fingerprint, now, user_name
from ..base.errors import CaseLoadError, WriteError
from ..case import dicomdir
from ..review.scored_case import ScoredCase
from ..case.case import case_id
from ..case.study import entered_record

log = logging.getLogger(__name__)

__all__ = ["REVIEW_FILE", "NOT_SCORED", "SCORING", "SCORED", "REVIEWED", "CaseEntry", "Worklist", "review_of",
           "restore_calipers"]
NOT_SCORED, SCORING = "not scored", "scoring"


@dataclass
class CaseEntry:
    path: Path
    state: str = NOT_SCORED
    best_score: float | None = None
    review: dict = field(default_factory=dict)  # what `review_of` recorded when it was marked reviewed
    content_hash: str | None = None  # known once opened or scored; else that of the record its file fits
    legacy: bool = False  # shown from a version 1 file's entry, kept by name: the content is not known yet
    # how the worklist names it: the file's name ("" here), unless that is not unique (a DICOMDIR's
    # recordings are all IM000000, in folders of their own: SE000001/IM000000)
    name: str = ""
    # what its review is kept by: the name, unless that may change (a DICOMDIR's recording by its whole
    # path, which another exam written to the stick later does not change)
    record_name: str = ""

    def __post_init__(self):
        self.name = self.name or self.path.name
        self.record_name = self.record_name or self.name

    @property
    def case_id(self) -> str:
        return case_id(self.path)


class Worklist:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.saved = True  # False after a save failed: the file lags behind what this session decided
        self.notices: list[str] = []  # what the user should be told about the review file, or the DICOMDIR
        # a USB stick's or a CD's exam: its DICOMDIR lists the recordings (in subfolders, files without extension)
        self.dicomdir = (self.folder / dicomdir.NAME) if (self.folder / dicomdir.NAME).is_file() else None
        self.cases = self._dicomdir_cases(self.dicomdir) if self.dicomdir else []
        self._exam = [entry.path for entry in self.cases]  # the DICOMDIR's recordings
        self.cases += [CaseEntry(path) for path in self._listed()]  # beside them: what a receiver put there
        self.whole_folder = not self.cases and not self.dicomdir and _holds_files(self.folder)
        if self.whole_folder:  # a DICOM series folder is one case
            self.cases = [CaseEntry(self.folder)]
        self.record = ReviewFile(self.folder)
        self._contents = Contents()
        self._pending: dict[tuple[str, str], dict] = {}  # this session's changes by (name, content hash), until saved
        self._matched_legacy: set[str] = set()
        self._show(self.record.read())

    @property
    def review_file(self) -> Path:
        return self.record.path

    def rescan(self) -> list[CaseEntry]:
        """The cases that appeared in the folder since it was read (a series `fetal-iqa listen`
        received, a file copied in), added after the others with what the review file says of them.
        A case that went stays listed (opening it says that it is gone)."""
        if self.whole_folder:
            return []
        known = {entry.path for entry in self.cases}
        added = [CaseEntry(path) for path in self._listed() if path not in known]
        if added:
            self.cases += added
            self._show(self.record.read())
        return added

    def _dicomdir_cases(self, index: Path) -> list[CaseEntry]:
        try:
            paths, together = dicomdir.case_paths(index)
        except CaseLoadError as error:
            self.notices.append(str(error))
            return []
        for folder in together:  # said: a recording the exam holds must not go unseen
            self.notices.append(f"The DICOMDIR lists several recordings in {folder.relative_to(self.folder).as_posix()}, "
                                "which open as one case (its first series); copy each series into a folder of its "
                                "own to review them all.")
        names = [path.relative_to(self.folder).parts for path in paths]
        shared = 0  # the folders every recording shares (PT000000/ST000000) are left out of its name
        while names and all(len(parts) > shared + 1 and parts[shared] == names[0][shared] for parts in names):
            shared += 1
        return [CaseEntry(path, name="/".join(parts[shared:]), record_name="/".join(parts))
                for path, parts in zip(paths, names)]

    def _listed(self) -> list[Path]:
        """The sweeps and series folders in the folder, but those that hold the DICOMDIR's recordings."""
        listed = [path for path in expand_paths([self.folder]) if path != self.folder] + dicom_series_folders(self.folder)
        return [path for path in listed if not any(path == held or path in held.parents for held in self._exam)]

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices

    def index_of(self, path: Path) -> int | None:
        return next((i for i, case in enumerate(self.cases) if case.path == Path(path)), None)

    def next_to_score(self, after: int) -> CaseEntry | None:
        """The first case after `after` (wrapping) that has not been scored yet."""
        order = self.cases[after + 1:] + self.cases[:after + 1]
        return next((case for case in order if case.state == NOT_SCORED), None)

    def opened(self, path: Path, content_hash: str) -> CaseEntry:
        """The case is loaded: what it shows is the record of its content (another sweep saved under
        the same name is not reviewed)."""
        index = self.index_of(path)
        if index is None:
            raise ValueError(f"{path} is not a case of this worklist")
        entry = self.cases[index]
        self._know(entry, content_hash)
        return entry

    def scored(self, path: Path, scored: ScoredCase) -> None:
        """Record the case's scoring and save; raises `WriteError` as `mark_reviewed` does."""
        entry = self.opened(path, scored.case.content_hash)
        if scored.n_pending == 0 and entry.state != REVIEWED:
            entry.state = SCORED
        best = scored.best_frame()
        entry.best_score = best.score if best else None
        if entry.state == SCORED:
            self._change(entry, {"state": SCORED, "best_score": entry.best_score})
        self._save()

    def mark_reviewed(self, path: Path, scored: ScoredCase) -> CaseEntry:
        """Record the review and save it beside the sweeps. A save that fails raises `WriteError`;
        what was decided stays in this worklist, and the next save (of any case) writes it too."""
        entry = self.opened(path, scored.case.content_hash)
        entry.state, entry.review = REVIEWED, review_of(scored)
        best = scored.best_frame()
        entry.best_score = best.score if best else None
        at, by = now(), user_name()
        self._change(entry, {"state": REVIEWED, "best_score": entry.best_score, "review": entry.review,
                             "decided_at": at, "decided_by": by, "history": [{"event": REVIEWED, "by": by, "at": at}]})
        self._save()
        return entry

    # -- the file beside the sweeps ------------------------------------------------------------

    def _change(self, entry: CaseEntry, change: dict) -> None:
        change = {"file": fingerprint(entry.path), **change}
        assert entry.content_hash is not None  # known: the case was `opened`
        key = (entry.record_name, entry.content_hash)
        waiting = self._pending.get(key)
        if waiting and waiting["state"] == REVIEWED and change["state"] != REVIEWED:
            change = {**waiting, "file": change["file"]}  # a review not saved yet stays one
        elif waiting and change["state"] == REVIEWED:
            change["history"] = waiting.get("history", []) + change["history"]
        self._pending[key] = change

    def _save(self) -> None:
        if not self._pending and not self._matched_legacy:
            return
        try:
            contents = self.record.update(self._pending, self._matched_legacy)
        except WriteError as error:
            self.saved = False
            log.warning("could not save the review: %s", error)
            raise
        self.saved = True
        self._pending.clear()
        self._matched_legacy.clear()
        self._show(contents)

    def _show(self, contents: Contents) -> None:
        """Each case as the file has it now (other sessions' decisions included)."""
        self._contents = contents
        self.notices += contents.notices
        for entry in self.cases:
            record = self._record_of(entry)
            if record is not None:
                _apply(entry, record)

    def _record_of(self, entry: CaseEntry) -> dict | None:
        records, name = self._contents.records, entry.record_name
        if entry.content_hash is not None:
            return self._pending.get((name, entry.content_hash)) or records.get((name, entry.content_hash))
        found = fingerprint(entry.path)
        for (recorded_name, content_hash), record in records.items():
            if recorded_name == name and record.get("file") == found:
                entry.content_hash = content_hash  # until the case is opened and its content tells
                return record
        legacy = self._contents.legacy.get(entry.case_id)
        if legacy is not None and _legacy_fits(legacy, entry.path):
            entry.legacy = True
            return legacy
        return None

    def _know(self, entry: CaseEntry, content_hash: str) -> None:
        if entry.content_hash == content_hash and not entry.legacy:
            return
        was_legacy, entry.content_hash, entry.legacy = entry.legacy, content_hash, False
        key = (entry.record_name, content_hash)
        record = self._pending.get(key) or self._contents.records.get(key)
        if record is None and was_legacy:  # version 1's entry for this name: this content is the one it reviewed
            legacy = self._contents.legacy[entry.case_id]
            record = {"file": fingerprint(entry.path), "state": legacy["state"],
                      "best_score": legacy.get("best_score"), "review": legacy.get("review") or {},
                      "decided_at": (legacy.get("review") or {}).get("reviewed_at"), "decided_by": None, "history": []}
            self._pending[key] = record
            self._matched_legacy.add(entry.case_id)
        if record is not None:
            _apply(entry, record)
        elif entry.state in (SCORED, REVIEWED):  # shown from a record of another sweep of this name
            entry.state, entry.best_score, entry.review = NOT_SCORED, None, {}


def _apply(entry: CaseEntry, record: dict) -> None:
    if entry.state == REVIEWED and record["state"] != REVIEWED:
        return  # this session's review, not saved yet
    entry.state, entry.best_score, entry.review = record["state"], record.get("best_score"), record.get("review") or {}


def _legacy_fits(legacy: dict, path: Path) -> bool:
    """A version 1 review (kept by name alone) is shown only for a file not changed since."""
    if legacy["state"] != REVIEWED:
        return False  # a score alone: scoring again reads the score cache
    try:
        reviewed = datetime.fromisoformat(legacy["review"]["reviewed_at"]).timestamp()
        return path.stat().st_mtime <= reviewed + 1  # reviewed_at keeps whole seconds
    except (KeyError, TypeError, ValueError, OSError):
        return False


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
    review = {"reviewed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "threshold": scored.threshold, "model": scored.model.name if scored.model else None,
              "model_identity": scored.model.identity if scored.model else None, "sweeps": sweeps}
    patient = entered_record(scored.case.study)
    if patient is not None:  # typed by the user for a file that names no patient: reopened, it has them again
        review["patient"] = patient
    return review


def restore_calipers(scored: ScoredCase, review: dict) -> None:
    """The measurements a review kept, back on their frames (after reopening the case)."""
    from ..review.calipers import DistanceCaliper, EllipseCaliper
    from ..case.measure import Ellipse
    for sweep in review.get("sweeps", []):
        kept: list[EllipseCaliper | DistanceCaliper] = []
        for record in sweep.get("calipers", []):
            spacing = tuple(record["pixel_spacing_mm"])
            if record["kind"] == "ellipse":
                ellipse = Ellipse(tuple(record["center_px"]), tuple(record["semi_axes_px"]), record["angle_deg"])
                kept.append(EllipseCaliper(ellipse, spacing, record["by"], record.get("model_ac_mm")))
            else:
                kept.append(DistanceCaliper(tuple(record["start_px"]), tuple(record["end_px"]), spacing, record["by"]))
        if kept and sweep.get("frame") is not None and 0 <= sweep["frame"] < scored.case.n_frames:
            scored.set_calipers(sweep["frame"], kept)


def dicom_series_folders(folder: Path) -> list[Path]:
    """The folders in `folder` that hold DICOM files and no other sweep files, each a case (a DICOM
    series, as `fetal-iqa listen` writes each series it receives). Hidden ones (a receiver's
    `.incoming`, with what is still arriving) are not."""
    try:
        subfolders = sorted(entry for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    except OSError:
        return []
    return [sub for sub in subfolders if expand_paths([sub]) == [sub] and _holds_dicom(sub)]


def _holds_dicom(folder: Path) -> bool:
    try:
        for entry in folder.iterdir():
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if entry.suffix.lower() in (".dcm", ".dicom"):
                return True
            with open(entry, "rb") as opened:
                if opened.read(132)[128:] == b"DICM":
                    return True
    except OSError:
        pass
    return False


def _holds_files(folder: Path) -> bool:
    try:
        return any(entry.is_file() and not entry.name.startswith(".") for entry in folder.iterdir())
    except OSError:
        return False
