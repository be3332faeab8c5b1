"""Sending: files queued in the outbox, then the outbox stored in its archives, as a generator of
`Progress` (the command line prints it, the window's worker emits it).

An association that cannot be made, or is lost midway (the archive stopped, the network went), is
tried again after each of `retry_delays`; once they are spent, what is left stays queued for the
next send. A file the archive answers with a failure status stays queued too, with that status
noted: nothing leaves the outbox but on the archive's word that it stored it.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from ..base.errors import WriteError
from ..base.text import counted
from ..base.fileio import special_file_kind
from .archive import Archive, ArchiveError, associate
from .outbox import DicomFile, Entry, NotDicom, Outbox, read_dicom_file

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (2.0, 5.0, 15.0)
SEND_LOCK = ".sending.lock"  # in the outbox folder: held while one send stores its entries
MAX_CONTEXTS = 128  # presentation contexts one association may propose (PS3.8)
SENT, FAILED, WAITING, GAVE_UP = "sent", "failed", "waiting", "gave up"
_STORED_WITH_WARNING = (0xB000, 0xB006, 0xB007)  # coerced, elements discarded, data set does not match: stored


@dataclass(frozen=True)
class Progress:
    done: int  # entries this send is finished with (sent, or failed and kept)
    total: int
    outcome: str  # SENT, FAILED (kept queued), WAITING (to try again), GAVE_UP (the rest kept queued)
    entry: Entry | None = None
    message: str = ""
    left: int = 0  # GAVE_UP: how many stay queued


@dataclass
class Tally:
    """What a send came to, for one message: add each `Progress` as it comes."""

    sent: int = 0
    kept: int = 0  # stay queued: refused, or not tried once the archive could not be reached
    problem: str = ""  # the last reason something stays queued
    notes: list[str] = field(default_factory=list)  # stored with a warning

    def add(self, step: Progress) -> None:
        if step.outcome == SENT:
            assert step.entry is not None  # SENT and FAILED name their entry
            self.sent += 1
            if step.message:
                self.notes.append(f"'{step.entry.name}' {step.message}")
        elif step.outcome == FAILED:
            assert step.entry is not None
            self.kept += 1
            self.problem = f"'{step.entry.name}' was not stored: {step.message}."
        elif step.outcome == GAVE_UP:
            self.kept += step.left
            self.problem = step.message


@dataclass
class Queued:
    entries: list[Entry]
    refused: list[NotDicom]  # files given that cannot be sent (nothing queued for them)
    skipped: int  # files in the folders given that are not DICOM (sidecars, pictures)


def find_dicom_files(paths: list[Path]) -> tuple[list[Path], int]:
    """Files as given; folders walked (below too, hidden entries aside) for the files marked as
    DICOM ('DICM' at byte 128, as scanners' exports without a suffix are), DICOMDIR indexes left
    out. Returns them and how many other files the folders held."""
    found, skipped = [], 0
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        for folder, subfolders, names in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(names):
                file = Path(folder) / name
                if name.startswith(".") or name.upper() == "DICOMDIR":
                    continue
                if _marked_dicom(file):
                    found.append(file)
                else:
                    skipped += 1
    return found, skipped


def queue_files(paths: list[Path], archive: Archive, outbox: Outbox, origin: str = "") -> Queued:
    """Every DICOM file of `paths` in the outbox for `archive`. A file that is not DICOM is
    refused (said, not queued); an outbox that cannot hold a file raises `WriteError`."""
    files, skipped = find_dicom_files(paths)
    queued = Queued([], [], skipped)
    for number, path in enumerate(files):
        try:
            dicom = read_dicom_file(path)
        except NotDicom as error:
            queued.refused.append(error)
            continue
        try:
            queued.entries.append(outbox.add(dicom, archive, origin))
        except (OSError, WriteError) as error:  # the outbox's own file named: the user knows the sweep
            problem, advice = ((error.problem, error.advice) if isinstance(error, WriteError)
                               else (error.strerror or str(error), ""))
            after = len(files) - number - 1
            left = f"; it and the {counted(after, 'file')} after it are not sent" if after else "; it is not sent"
            raise WriteError(outbox.folder, f"'{path.name}' could not be queued ({problem}){left}", advice) from None
    return queued


def send_queued(outbox: Outbox, only: Archive | None = None, retry_delays=RETRY_DELAYS_S,
                cancel: threading.Event | None = None) -> Iterator[Progress]:
    """Store every entry of the outbox (or `only` those for one archive) in its archive, oldest first.
    One send of an outbox at a time (two `send --flush`, or the window's and a command's, would each
    store every entry): another waits for it (WAITING, before any other step), then sends what is left."""
    cancel = cancel or threading.Event()
    if not _pending(outbox, only):
        return
    lock = FileLock(outbox.folder / SEND_LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield Progress(0, 0, WAITING, message="Another send of this outbox is running: waiting for it to finish.")
        while not _acquired(lock):
            if cancel.wait(0.2):
                return
    try:
        entries = _pending(outbox, only)  # what the other send left
        by_archive: dict[str, list[Entry]] = {}
        for entry in entries:
            by_archive.setdefault(entry.archive.key, []).append(entry)
        counter = _Counter(len(entries))
        for group in by_archive.values():
            yield from _send_to(group[0].archive, group, outbox, retry_delays, cancel, counter)
            if cancel.is_set():
                return
    finally:
        lock.release()


def _pending(outbox: Outbox, only: Archive | None) -> list[Entry]:
    return [entry for entry in outbox.entries() if only is None or entry.record["archive"] == only.record()]


def _acquired(lock: FileLock) -> bool:
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        return False
    return True


class _Counter:
    def __init__(self, total: int):
        self.done, self.total = 0, total

    def progress(self, outcome: str, entry: Entry | None = None, message: str = "", finished: bool = True,
                 left: int = 0) -> Progress:
        self.done += finished
        return Progress(self.done, self.total, outcome, entry, message, left)


def _send_to(archive: Archive, pending: list[Entry], outbox: Outbox, retry_delays, cancel: threading.Event,
             counter: _Counter) -> Iterator[Progress]:
    failures = 0  # in a row: a store that succeeds starts the delays again
    while pending and not cancel.is_set():
        batch = _batch(pending)
        problem: str | None  # why this batch was not sent; None: it was
        try:
            association = associate(archive, sorted({(e.dicom.sop_class, e.dicom.transfer_syntax) for e in batch}))
        except ArchiveError as error:
            problem, retry = str(error), error.retry
        else:
            problem, retry = None, True
            try:
                for entry in batch:
                    stored, message = _store(association, entry)
                    if stored is None:  # the association is gone: this entry and the rest are tried again
                        problem = f"The association with {archive.describe()} was lost while sending " \
                                  f"'{entry.name}' ({message})."
                        break
                    pending.remove(entry)
                    if stored:
                        outbox.sent(entry)
                        failures = 0
                        yield counter.progress(SENT, entry, message)
                    else:
                        outbox.failed(entry, message)
                        yield counter.progress(FAILED, entry, message)
                    if cancel.is_set():
                        break
            finally:
                if association.is_established:
                    association.release()
        if problem is None:
            continue
        if failures >= len(retry_delays) or not retry:
            for entry in pending:
                outbox.failed(entry, problem)
            counter.done += len(pending)  # finished with, for this send: they stay queued
            yield counter.progress(GAVE_UP, message=problem, finished=False, left=len(pending))
            return
        delay = retry_delays[failures]
        failures += 1
        yield counter.progress(WAITING, message=f"{problem} Trying again in {delay:g} s.", finished=False)
        if cancel.wait(delay):
            return


def _batch(pending: list[Entry]) -> list[Entry]:
    """The entries whose (SOP class, transfer syntax) are among the first `MAX_CONTEXTS` kinds: one association's worth."""
    kinds: list[tuple[str, str]] = []
    batch = []
    for entry in pending:
        kind = (entry.dicom.sop_class, entry.dicom.transfer_syntax)
        if kind not in kinds:
            if len(kinds) == MAX_CONTEXTS:
                continue
            kinds.append(kind)
        batch.append(entry)
    return batch


def _store(association, entry: Entry) -> tuple[bool | None, str]:
    """(True, note) stored; (False, why) refused by the archive; (None, why) the association was lost."""
    dicom: DicomFile = entry.dicom
    from pydicom.errors import InvalidDicomError
    if not association.is_established:
        return None, "the archive closed it"
    try:
        mode = os.lstat(entry.file).st_mode
        if not stat.S_ISREG(mode):  # the outbox makes hard links and copies only: someone else's, not sent
            return False, f"the queued copy is {special_file_kind(mode)}, which the outbox never makes; not sent"
        started = time.monotonic()
        status = association.send_c_store(entry.file)
    except InvalidDicomError:  # damaged since it was queued (a disk error, an edit): said, kept queued
        return False, "the queued copy is not a DICOM file any more (damaged since it was queued)"
    except ValueError as error:  # no accepted presentation context for this kind of file
        log.debug("no context for %s: %s", entry.file, error)
        return False, f"the archive does not accept {_uid_name(dicom.sop_class)} files in " \
                      f"{_uid_name(dicom.transfer_syntax)}"
    except (OSError, RuntimeError) as error:  # the queued copy went (a disk error): said, kept queued
        return False, f"the queued file could not be read ({error})"
    if not status or "Status" not in status:
        waited = time.monotonic() - started
        if waited >= association.dimse_timeout * 0.9:  # pynetdicom aborts when the answer is overdue
            return None, f"the archive did not answer within {waited:.0f} s; it may be overloaded or hung"
        return None, "no answer came" if association.is_established else "the connection was closed"
    code = int(status.Status)
    if code == 0:
        return True, ""
    described = _status_text(code, status.get("ErrorComment"))
    if code in _STORED_WITH_WARNING:
        return True, f"stored with a warning: {described}"
    return False, f"the archive refused it: {described}"


def _status_text(code: int, comment) -> str:
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS
    meaning = STORAGE_SERVICE_CLASS_STATUS.get(code, ("", "an unknown status"))[1]
    if 0xA700 <= code <= 0xA7FF:
        meaning = "out of resources (its disk may be full)"
    elif 0xA900 <= code <= 0xA9FF:
        meaning = "the data set does not match its SOP class"
    elif 0xC000 <= code <= 0xCFFF:
        meaning = "it cannot understand the file"
    return f"status 0x{code:04X}, {meaning}" + (f" ({comment})" if comment else "")


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID
    return UID(uid).name


def _marked_dicom(file: Path) -> bool:
    """'DICM' at byte 128; a pipe or a device is not opened (a FIFO would block)."""
    try:
        if not file.is_file():
            return False
        with open(file, "rb") as opened:
            return opened.read(132)[128:] == b"DICM"
    except OSError:
        return False
