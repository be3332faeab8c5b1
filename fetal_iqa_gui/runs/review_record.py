"""The review file beside the sweeps: one record that every session on the folder shares.

Each save locks the file, reads what is there now, merges this session's changes into it and
writes it back, so that a second reviewer's session (or one that only scored) keeps what others
decided. Records are kept by file name and the sweep's content hash (its pixels' sha256): another
sweep saved under the same name is another record. Per sweep, the newest decision wins and every review is
kept in its history (who: the OS user name; when). A file that does not parse, or that a newer
version wrote, is never overwritten: it is moved aside (`<name>.damaged-<time>`) and said. An
entry with values of the wrong types is ignored with a warning; the rest loads. Qt-free.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TypeVar

from filelock import FileLock, Timeout

from ..base.errors import WriteError
from ..base.fileio import atomic_write, check_replaceable, read_regular
from ..case.study import entered_study

log = logging.getLogger(__name__)

_Key = TypeVar("_Key")  # of a review file's entries: a case id (version 1), a (file name, content hash)

REVIEW_FILE = ".fetal-iqa-review.json"
REVIEW_VERSION = 2  # 1: keyed by the case's name alone (read, and kept until each sweep is matched)
SCORED, REVIEWED = "scored", "reviewed"
LOCK_TIMEOUT_S = 10  # a save holds the lock for milliseconds: longer means a session hung
NEW_FILE_MODE = 0o600  # it names the folder's cases; an existing file keeps the mode its owners gave it


@dataclass
class Contents:
    """What the file holds: records by (file name, content hash), version 1's by case id, and what
    to tell."""

    records: dict[tuple[str, str], dict] = field(default_factory=dict)
    legacy: dict[str, dict] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    unreadable: dict = field(default_factory=dict)  # entries left out, by their key: written back as they were
    blocked: str = ""  # why this file must not be written (it could not be read, nor moved aside)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def user_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no name in the environment nor the password database
        return "unknown"


def fingerprint(path: Path) -> dict | None:
    """The file's size and modification time: whether a record saved for it still fits, without
    reading the sweep (the content hash confirms it when the case is opened)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns}


class ReviewFile:
    def __init__(self, folder: Path):
        self.path = Path(folder) / REVIEW_FILE
        # 0666 less the umask: in a team's folder (umask 002) each reviewer can take the lock another left
        self._lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT_S, mode=0o666)

    def read(self) -> Contents:
        """What the file holds now (locked when the folder lets a lock be taken)."""
        try:
            with self._locked():
                return self._read()
        except WriteError as error:  # a read-only folder: read it as it is, unlocked
            log.info("reading %s without a lock: %s", self.path, error)
            return self._read()

    def update(self, changes: dict[tuple[str, str], dict], matched_legacy: set[str]) -> Contents:
        """Merge `changes` (records by file name and content hash) into the file as it is now and write it.
        `matched_legacy`: version 1 entries now kept as records. Raises `WriteError`."""
        with self._locked():
            contents = self._read()
            if contents.blocked:
                raise WriteError(self.path, contents.blocked, "Move it out of the folder to save reviews here.")
            for key, ours in changes.items():
                contents.records[key] = merge(contents.records.get(key), ours)
            for case_id in matched_legacy:
                contents.legacy.pop(case_id, None)
            document = _document(contents)
            text = json.dumps(document, indent=1)
            atomic_write(self.path, lambda file: file.write(text.encode()), overwrite=True, mode=self._mode())
        return contents

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self.path.parent.is_dir():  # the lock would make the folder again, for a review no one finds there
            raise WriteError(self.path, "its folder is gone (moved, deleted, or its disk taken out)",
                             "Open the folder where it is now to save reviews there.")
        try:
            # filelock follows a link and opens what is there (3.12, the floor, truncated the target: anyone's file
            # planted as a link in a shared folder); a pipe or a device is opened too
            check_replaceable(self._lock.lock_file)
            with self._lock:
                yield
        except Timeout:
            raise WriteError(self.path, f"another session has kept it locked for over {LOCK_TIMEOUT_S} s",
                             "Try again; if it persists, close the other windows on this folder.") from None
        except OSError as error:  # the lock file cannot be made or opened: a read-only folder, another's lock file
            raise WriteError(self.path, f"its lock file {self._lock.lock_file} cannot be used "
                             f"({error.strerror or error})", "Choose a folder you can write to.") from None

    def _mode(self) -> int:
        try:
            return stat.S_IMODE(self.path.stat().st_mode)
        except OSError:
            return NEW_FILE_MODE

    def _read(self) -> Contents:
        try:
            data = read_regular(self.path)  # a FIFO put here never blocks the window
        except FileNotFoundError:
            return Contents()
        except OSError as error:  # not damaged, only unreadable now: never overwritten
            reason = f"it could not be read ({error.strerror or error})"
            log.warning("the review file %s: %s", self.path, reason)
            return Contents(notices=[f"The review file {self.path} could not be read ({error.strerror or error}); "
                                     "reviews of this folder are not shown, and not saved until it can be."],
                            blocked=reason)
        try:
            document = json.loads(data.decode("utf-8"))
            version = document.get("version") if isinstance(document, dict) else None
            if version not in (1, REVIEW_VERSION):
                problem = (f"it was written by a newer version of fetal-iqa (version {version})"
                           if isinstance(version, int) and version > REVIEW_VERSION else "it is not a review file")
                return self._set_aside(problem)
            return _parse(document, version, self.path)
        except (ValueError, TypeError, AttributeError) as error:
            return self._set_aside(f"it is damaged ({error})")

    def _set_aside(self, problem: str) -> Contents:
        aside = self.path.with_name(f"{REVIEW_FILE}.damaged-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        while aside.exists():
            aside = aside.with_name(aside.name + "-")
        try:
            os.rename(self.path, aside)
        except OSError as error:
            log.warning("the review file %s: %s; it could not be moved aside (%s)", self.path, problem, error)
            return Contents(notices=[f"The review file {self.path} was not read: {problem}. It could not be "
                                     f"moved aside ({error.strerror or error}), so reviews here are not saved."],
                            blocked=f"{problem}, and it is kept as it is")
        log.warning("the review file %s: %s; kept as %s", self.path, problem, aside)
        return Contents(notices=[f"The review file of this folder was not read: {problem}. It is kept as "
                                 f"{aside.name}; reviews start afresh in a new one."])


def _document(contents: Contents) -> dict:
    sweeps: dict[str, dict] = {}
    legacy, unsorted = dict(contents.legacy), {}
    for key, value in contents.unreadable.items():
        if isinstance(key, str):  # a version 1 entry
            legacy.setdefault(key, value)
        elif key[1] is None:  # a name that holds no object of records
            unsorted[key[0]] = value
        else:
            sweeps.setdefault(key[0], {})[key[1]] = value
    for (name, content_hash), record in sorted(contents.records.items()):
        sweeps.setdefault(name, {})[content_hash] = record
    document = {"version": REVIEW_VERSION, "sweeps": sweeps}
    if legacy:
        document["unmatched_version_1"] = legacy
    if unsorted:
        document["unreadable"] = unsorted
    return document


def _parse(document: dict, version: int, path: Path) -> Contents:
    """Version 2: {"sweeps": {file name: {content hash: record}}}; version 1: {"cases": {case id: record}}."""
    contents = Contents()
    if version == 1:
        contents.legacy = _valid_entries(_section(document, "cases"), 1, path, contents)
        return contents
    contents.legacy = _valid_entries(_section(document, "unmatched_version_1"), 1, path, contents)
    flat: dict[tuple[str, str | None], object] = {}
    for name, by_content in _section(document, "sweeps").items():
        for content_hash, record in (by_content.items() if isinstance(by_content, dict) else [(None, by_content)]):
            flat[(name, content_hash)] = record
    valid = _valid_entries(flat, version, path, contents)
    # (name, None) holds what is not an object of records: never valid
    contents.records = {(name, content_hash): record for (name, content_hash), record in valid.items()
                        if content_hash is not None}
    return contents


def _section(document: dict, name: str) -> dict:
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"its {name!r} are not an object")
    return value


def _valid_entries(entries: dict[_Key, object], version: int, path: Path, contents: Contents) -> dict[_Key, dict]:
    valid: dict[_Key, dict] = {}
    ignored: list[str] = []
    for key, entry in entries.items():
        problem = _problem(entry, version)
        if problem:
            log.warning("ignoring the entry %r of the review file %s: %s", key, path, problem)
            ignored.append(key[0] if isinstance(key, tuple) else str(key))
            contents.unreadable[key] = entry
        elif isinstance(entry, dict):  # what `_problem` passes
            valid[key] = entry
    if ignored:
        contents.notices.append(f"{len(ignored)} entr{'y' if len(ignored) == 1 else 'ies'} of the review file "
                                f"could not be read and {'was' if len(ignored) == 1 else 'were'} left out: "
                                + ", ".join(ignored[:5]) + ("…" if len(ignored) > 5 else ""))
    return valid


def merge(theirs: dict | None, ours: dict) -> dict:
    """One sweep's record: the newest decision wins, both reviewers stay in its history; scoring
    never undoes a review."""
    if theirs is None:
        return ours
    merged = {**theirs, "file": ours.get("file")}
    ours_newer = ours["state"] == REVIEWED and (theirs["state"] != REVIEWED
                                                or (ours.get("decided_at") or "") >= (theirs.get("decided_at") or ""))
    if ours_newer:
        merged.update({key: ours.get(key) for key in ("state", "best_score", "review", "decided_at", "decided_by")})
    elif theirs["state"] != REVIEWED:
        merged.update(state=ours["state"], best_score=ours.get("best_score"))
    history = list(theirs.get("history", []))
    history += [event for event in ours.get("history", []) if event not in history]
    merged["history"] = sorted(history, key=lambda event: event["at"])
    return merged


# -- what a hand-edited file must hold ---------------------------------------------------------

def _number(value, optional: bool = True) -> bool:
    if value is None:
        return optional
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an integer of hundreds of digits
        return False


def _point(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_number(v, optional=False) for v in value)


def _problem(entry, version: int) -> str:
    """What is wrong with an entry, or '' when it can be shown."""
    if not isinstance(entry, dict):
        return "not an object"
    if entry.get("state") not in (SCORED, REVIEWED):
        return f"the state {entry.get('state')!r}"
    if not _number(entry.get("best_score")):
        return f"the best score {entry.get('best_score')!r}"
    if version == REVIEW_VERSION:
        history = entry.get("history", [])
        if not (isinstance(history, list) and all(isinstance(e, dict) and isinstance(e.get("at"), str)
                                                  and isinstance(e.get("by"), str) for e in history)):
            return "its history"
        file = entry.get("file")
        if file is not None and not (isinstance(file, dict) and all(isinstance(file.get(k), int)
                                                                    for k in ("size", "mtime_ns"))):
            return "its file's size and time"
        if not all(isinstance(entry.get(k), (str, type(None))) for k in ("decided_at", "decided_by")):
            return "who decided, or when"
    review = entry.get("review") or {}
    return _review_problem(review) if entry["state"] == REVIEWED or review else ""


def _review_problem(review) -> str:
    if not isinstance(review, dict) or not isinstance(review.get("sweeps", []), list):
        return "its review"
    if not isinstance(review.get("reviewed_at", ""), str):
        return "its review's time"
    if "patient" in review and entered_study(review["patient"], "") is None:
        return "its patient details"
    for sweep in review.get("sweeps", []):
        if not isinstance(sweep, dict):
            return "a sweep of its review"
        frame = sweep.get("frame")
        if frame is not None and not (isinstance(frame, int) and not isinstance(frame, bool) and frame >= 0):
            return f"the frame {frame!r}"
        if not (_number(sweep.get("ac_mm")) and _number(sweep.get("score"))):
            return "a sweep's AC or score"
        calipers = sweep.get("calipers", [])
        if not isinstance(calipers, list) or not all(_caliper_fits(c) for c in calipers):
            return "a measurement"
    return ""


def _caliper_fits(record) -> bool:
    if not (isinstance(record, dict) and _point(record.get("pixel_spacing_mm")) and isinstance(record.get("by"), str)):
        return False
    if record.get("kind") == "ellipse":
        return (_point(record.get("center_px")) and _point(record.get("semi_axes_px"))
                and _number(record.get("angle_deg"), optional=False) and _number(record.get("model_ac_mm"))
                and _number(record.get("ac_mm")))
    return record.get("kind") == "distance" and _point(record.get("start_px")) and _point(record.get("end_px"))
