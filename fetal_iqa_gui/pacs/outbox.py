"""The outbox: DICOM files waiting to be stored in an archive, kept on disk until it has.

Each entry is a pair of files in the outbox folder: `<key>.dcm`, the instance (a hard link to the
file given where the disk allows, so that queueing a sweep costs no copy, else a copy), and
`<key>.json`, written last, which makes it an entry: where it goes and what happened so far. An
entry leaves the outbox only once the archive has answered that it stored the instance; the
key is the destination and the SOP Instance UID, so queueing a file again does not send it twice.
The folder and the copies are the user's alone (they are patients' images).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import platformdirs

from ..base.errors import FetalIqaError, WriteError
from ..base.fileio import atomic_write, private_folder, read_regular, special_file_kind
from .archive import Archive

log = logging.getLogger(__name__)

OUTBOX_ENV = "FETAL_IQA_OUTBOX"
PRIVATE_FILE = 0o600
ID_LENGTH = 8
STAGING = ".staging"  # where the window writes a case's DICOM outputs before they are queued (same disk: a link)
ORPHAN_AGE_S = 3600  # an instance without its record this old was left by a killed `add`


class NotDicom(FetalIqaError):
    """A file that cannot be sent: not a DICOM file, or one without the UIDs an archive files it by."""

    doing = "Cannot send"
    exit_code = 2  # bad input


def outbox_dir() -> Path:
    """FETAL_IQA_OUTBOX when set, else the user data folder's `outbox` (data, not a cache: it is
    what has not reached the archive yet, and must survive a cache clean-up)."""
    override = os.environ.get(OUTBOX_ENV)
    return Path(override) if override else Path(platformdirs.user_data_dir("fetal-iqa")) / "outbox"


@dataclass(frozen=True)
class DicomFile:
    path: Path
    sop_class: str
    sop_instance: str
    transfer_syntax: str


def read_dicom_file(path: Path) -> DicomFile:
    """The UIDs a C-STORE needs from a DICOM file's header (its pixels are not read); `NotDicom` otherwise."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise NotDicom(path, f"it is not a regular file (it is {special_file_kind(mode)})")
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        raise NotDicom(path, "it is not a DICOM file (no DICOM preamble)",
                       "Send DICOM files: the app's DICOM exports, or a scanner's.") from None
    except OSError as error:
        raise NotDicom(path, f"it cannot be read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds for a damaged header
        raise NotDicom(path, f"its DICOM header cannot be read ({error})") from None
    meta = header.file_meta
    sop_class = str(header.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID") or "")
    sop_instance = str(header.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID") or "")
    syntax = str(meta.get("TransferSyntaxUID") or "")
    if not (sop_class and sop_instance and syntax):
        missing = [name for name, value in (("SOP Class UID", sop_class), ("SOP Instance UID", sop_instance),
                                            ("Transfer Syntax UID", syntax)) if not value]
        raise NotDicom(path, f"it has no {' or '.join(missing)}, which an archive needs to store it")
    return DicomFile(path, sop_class, sop_instance, syntax)


@dataclass(frozen=True)
class Entry:
    key: str
    folder: Path
    record: dict

    @property
    def file(self) -> Path:
        return self.folder / f"{self.key}.dcm"

    @property
    def archive(self) -> Archive:
        return Archive.from_record(self.record["archive"])

    @property
    def name(self) -> str:
        """The file it was queued from, by name."""
        return Path(self.record["source"]).name

    @property
    def id(self) -> str:
        """What `fetal-iqa send --list` shows and `--drop` takes: the key's start, unique enough in one outbox."""
        return self.key[:ID_LENGTH]

    @property
    def dicom(self) -> DicomFile:
        return DicomFile(self.file, self.record["sop_class"], self.record["sop_instance"],
                         self.record["transfer_syntax"])


class Outbox:
    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder else outbox_dir()

    def add(self, dicom: DicomFile, archive: Archive, origin: str = "") -> Entry:
        """Queue `dicom` for `archive` (again: the same entry, with its history); `WriteError` if the
        outbox cannot hold it, in which case nothing is queued. `origin`: what it was made from, when
        the app made it (`case_send.outputs_key`)."""
        private_folder(self.folder)
        key = hashlib.sha256(f"{archive.key}|{dicom.sop_instance}".encode()).hexdigest()[:32]
        previous = self._read(self.folder / f"{key}.json")
        _place_instance(dicom.path, self.folder / f"{key}.dcm")
        record = {"archive": archive.record(), "source": str(dicom.path), "sop_class": dicom.sop_class,
                  "sop_instance": dicom.sop_instance, "transfer_syntax": dicom.transfer_syntax, "origin": origin,
                  "queued_at": previous.get("queued_at") if previous else _now(),
                  "attempts": previous.get("attempts", 0) if previous else 0,
                  "last_error": previous.get("last_error", "") if previous else ""}
        entry = Entry(key, self.folder, record)
        self._write(entry)
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, oldest first; instances left by a killed `add` (no record) are removed."""
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return []
        entries = []
        for name in names:
            path = self.folder / name
            if name.endswith(".json") and (path.with_suffix(".dcm")).is_file():
                record = self._read(path)
                if record is not None:
                    entries.append(Entry(path.stem, self.folder, record))
            elif name.endswith((".dcm", ".part")) and not path.with_suffix(".json").exists():
                with contextlib.suppress(OSError):
                    if time.time() - path.stat().st_mtime > ORPHAN_AGE_S:
                        path.unlink()
        return sorted(entries, key=lambda entry: entry.record.get("queued_at", ""))

    def find(self, wanted: str) -> Entry:
        """The entry whose ID (or key) starts with `wanted`; `KeyError` saying why when none or several do."""
        wanted = wanted.strip().lower()
        matches = [entry for entry in self.entries() if wanted and entry.key.startswith(wanted)]
        if len(matches) != 1:
            raise KeyError(f"no entry of the outbox has the ID '{wanted}'" if not matches else
                           f"{len(matches)} entries of the outbox have IDs starting with '{wanted}': give more of it")
        return matches[0]

    def drop(self, entry: Entry) -> None:
        """Take an entry out without sending it (one the archive refuses for good): the user's choice."""
        self.sent(entry)
        log.info("dropped %s (queued for %s) from the outbox", entry.name, entry.archive.describe())

    def staging(self) -> Path:
        """A new private folder inside the outbox's, for files about to be queued (removed once they are):
        on the outbox's disk, so that queueing them is a link, not a copy."""
        folder = private_folder(self.folder / STAGING) / secrets.token_hex(8)
        folder.mkdir(mode=0o700)
        return folder

    def sent(self, entry: Entry) -> None:
        """The archive stored it: the record goes first, so that a kill between the two leaves an orphan, not an entry."""
        (self.folder / f"{entry.key}.json").unlink(missing_ok=True)
        entry.file.unlink(missing_ok=True)

    def failed(self, entry: Entry, message: str) -> Entry:
        """Note the failure on the entry (it stays queued); a record that cannot be written only loses the note."""
        record = {**entry.record, "attempts": entry.record.get("attempts", 0) + 1, "last_error": message,
                  "last_attempt": _now()}
        updated = Entry(entry.key, entry.folder, record)
        try:
            self._write(updated)
        except WriteError as error:
            log.warning("could not note the failure on %s: %s", entry.file, error)
        return updated

    def _write(self, entry: Entry) -> None:
        text = json.dumps(entry.record, indent=1).encode()
        atomic_write(self.folder / f"{entry.key}.json", lambda file: file.write(text), overwrite=True,
                     mode=PRIVATE_FILE)

    @staticmethod
    def _read(path: Path) -> dict | None:
        try:
            record = json.loads(read_regular(path))
            Archive.from_record(record["archive"])
            if not all(isinstance(record.get(name), str) for name in ("source", "sop_class", "sop_instance",
                                                                       "transfer_syntax")):
                raise ValueError("a UID is missing")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("the outbox entry %s cannot be read (%s); it is left where it is", path, error)
            return None
        return record


def _place_instance(source: Path, target: Path) -> None:
    """`source` at `target`, whole: a hard link where the disk allows (no copy; an export replaced
    later by an atomic write keeps the link to what was queued), else a private copy."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        os.link(source, temp)
        os.replace(temp, target)
        return
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
    with open(source, "rb") as original:
        atomic_write(target, lambda file: shutil.copyfileobj(original, file, 1 << 20), overwrite=True,
                     mode=PRIVATE_FILE)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
