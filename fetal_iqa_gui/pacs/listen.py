"""Receiving from the ultrasound machine: a C-STORE receiver (a storage SCP) that puts each series
it receives into a worklist folder once its study is complete.

Only the calling AE titles configured are accepted (others are rejected when they associate), and
only when they call us by our own AE title. Each instance is written whole (a temporary name, then
a rename) into a hidden folder of the worklist folder, `.incoming/<study>/<series>/`, which the
worklist does not list. A study is complete when the association that sent it is released (the
scanner's "sent"); one whose association was aborted, or that a stopped receiver left, is complete
once nothing more of it came for `quiet_s`. Then each of its series folders is renamed into the
worklist folder: a case appears whole, never half received. The files are the user's alone.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import queue
import re
import shutil
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..base.errors import WriteError
from ..base.fileio import atomic_write, private_folder
from .archive import check_ae_title

log = logging.getLogger(__name__)

DEFAULT_AE_TITLE = "FETALIQA"
DEFAULT_PORT = 11112  # DICOM's registered port for those that cannot take 104
DEFAULT_QUIET_S = 120.0
INCOMING = ".incoming"
PRIVATE_FILE = 0o600
_SUCCESS, _OUT_OF_RESOURCES, _NO_UIDS = 0x0000, 0xA700, 0xA900
_KEY = re.compile(r"[0-9a-f]{16}")  # `_key`'s names: nothing else in .incoming is ours
_NAME_PART = 16  # a part of a series folder's name, at most (DICOM's CS and DA are shorter): the name fits a disk

LISTENING, REFUSED, RECEIVED, FAILED = "listening", "refused", "received", "failed"


@dataclass(frozen=True)
class Event:
    kind: str  # LISTENING, REFUSED (an association), RECEIVED (a study into the folder), FAILED (an instance)
    message: str
    folders: tuple[Path, ...] = ()  # RECEIVED: the series folders now in the worklist folder


@dataclass
class _Study:
    folder: Path
    associations: set[int] = field(default_factory=set)  # those still sending it
    last_activity: float = field(default_factory=time.monotonic)
    instances: int = 0
    callers: set[str] = field(default_factory=set)


def _key(uid: str) -> str:
    """A UID as a short file name: it names nobody, and is safe on every disk."""
    return hashlib.sha256(uid.encode()).hexdigest()[:16]


class Receiver:
    """The storage SCP's handlers and the studies under way; `listen` runs it."""

    def __init__(self, into: Path, quiet_s: float, events: queue.Queue, memory_bytes: int | None = None):
        self.into, self.incoming, self.quiet_s, self.events = into, into / INCOMING, quiet_s, events
        self.lock = threading.Lock()
        self.studies: dict[str, _Study] = {}
        # pynetdicom holds each instance whole in memory until its last byte: what every association
        # is sending at once is bounded, as what the app opens is (case.headers), not by the sender
        if memory_bytes is None:
            from ..case.headers import default_memory_budget
            memory_bytes = default_memory_budget()
        self.memory_bytes = memory_bytes
        self.arriving: dict[int, int] = {}  # association (its id) -> bytes of its instance under way
        if os.path.islink(self.incoming):  # someone's link: its target's folders would be moved into the worklist
            raise OSError(errno.ELOOP, f"{INCOMING} in it is a link to another folder; remove the link")
        private_folder(self.incoming)
        for folder in sorted(self.incoming.iterdir()):  # left by a receiver that was stopped: complete after quiet_s
            if _KEY.fullmatch(folder.name) and _real_folder(folder):
                self.studies[folder.name] = _Study(folder, last_activity=time.monotonic())

    def handlers(self):
        from pynetdicom import evt
        return [(evt.EVT_C_STORE, self.on_store), (evt.EVT_RELEASED, self.on_released),
                (evt.EVT_CONN_CLOSE, self.on_closed), (evt.EVT_REJECTED, self.on_rejected),
                (evt.EVT_DATA_RECV, self.on_data), (evt.EVT_C_ECHO, self.on_echo)]

    def on_data(self, event) -> None:
        association = id(event.assoc)
        with self.lock:
            self.arriving[association] = self.arriving.get(association, 0) + len(event.data)
            over = sum(self.arriving.values()) > self.memory_bytes
            if over:
                self.arriving.pop(association)
        if over:  # the sender is told by the abort; what it sent whole before is kept
            event.assoc.abort(block=False)
            self.events.put(Event(FAILED, f"{_caller(event)} sent more at once than the receiver holds in memory "
                                          f"({self.memory_bytes / 1e6:.0f} MB); the association was aborted, the "
                                          "instance it was sending is not kept"))

    def on_echo(self, event) -> int:
        with self.lock:
            self.arriving.pop(id(event.assoc), None)
        return _SUCCESS

    def on_store(self, event) -> int:
        caller = _caller(event)
        with self.lock:
            self.arriving.pop(id(event.assoc), None)  # whole: the next instance counts from nothing
        try:
            dataset = event.dataset
            study_uid, series_uid, sop_uid = (str(dataset.get(name) or "") for name in
                                              ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        except Exception as error:  # noqa: BLE001 - pydicom raises many kinds for a damaged data set
            log.warning("an instance from %s could not be decoded: %s", caller, error)
            return _NO_UIDS
        if not (study_uid and series_uid and sop_uid):
            self.events.put(Event(FAILED, f"an instance from {caller} has no study, series or instance UID; refused"))
            return _NO_UIDS
        study = self._study(study_uid, id(event.assoc), caller)
        path = study.folder / _key(series_uid) / f"{_key(sop_uid)}.dcm"
        try:
            private_folder(path.parent)
            atomic_write(path, lambda file: _write_instance(file, event), overwrite=True, mode=PRIVATE_FILE)
        except (OSError, WriteError) as error:  # the scanner is told, and keeps the instance to send again
            self.events.put(Event(FAILED, f"an instance from {caller} could not be written: {error}"))
            return _OUT_OF_RESOURCES
        with self.lock:
            study.instances += 1
            study.last_activity = time.monotonic()
        return _SUCCESS

    def on_released(self, event) -> None:
        self._association_ended(id(event.assoc), released=True)

    def on_closed(self, event) -> None:
        self._association_ended(id(event.assoc), released=False)  # after a release: nothing left to do

    def on_rejected(self, event) -> None:
        caller = _caller(event)
        self.events.put(Event(REFUSED, f"refused an association from '{caller}' at {event.assoc.requestor.address}: "
                                       "not an allowed calling AE title, or it did not call us by our AE title"))

    def complete_quiet(self) -> None:
        """Move the studies no association is sending that were quiet for `quiet_s`."""
        now = time.monotonic()
        with self.lock:
            quiet = [key for key, study in self.studies.items()
                     if not study.associations and now - study.last_activity >= self.quiet_s]
        for key in quiet:
            self._complete(key)

    def _study(self, study_uid: str, association: int, caller: str) -> _Study:
        key = _key(study_uid)
        with self.lock:
            study = self.studies.setdefault(key, _Study(self.incoming / key))
            study.associations.add(association)
            study.callers.add(caller)
            study.last_activity = time.monotonic()
        return study

    def _association_ended(self, association: int, released: bool) -> None:
        done = []
        with self.lock:
            self.arriving.pop(association, None)
            for key, study in self.studies.items():
                if association in study.associations:
                    study.associations.discard(association)
                    study.last_activity = time.monotonic()
                    if released and not study.associations:
                        done.append(key)
        for key in done:
            self._complete(key)

    def _complete(self, key: str) -> None:
        with self.lock:
            study = self.studies.pop(key, None)
        if study is None:
            return
        moved = []
        try:
            for series in sorted(p for p in study.folder.iterdir() if _KEY.fullmatch(p.name) and _real_folder(p)):
                if not any(series.glob("*.dcm")):  # none could be written (a full disk; a write killed): no case
                    shutil.rmtree(series)  # only a killed write's temporary file, if anything
                    continue
                target = _free_name(self.into, _series_name(series))
                os.rename(series, target)  # in one folder's tree: atomic, the case appears whole
                moved.append(target)
            study.folder.rmdir()
        except OSError as error:
            log.warning("could not move the study %s into %s: %s", study.folder, self.into, error)
            self.events.put(Event(FAILED, f"a received study could not be moved into {self.into} ({error}); "
                                          f"it is kept in {study.folder}"))
        if moved:
            callers = ", ".join(sorted(study.callers)) or "an earlier session"
            names = ", ".join(folder.name for folder in moved)
            count = f"{study.instances} instance{'s' * (study.instances != 1)}, " if study.instances else ""
            self.events.put(Event(RECEIVED, f"received from {callers}: {count}{len(moved)} series: {names}",
                                  tuple(moved)))


def listen(into: Path, port: int = DEFAULT_PORT, allowed: tuple[str, ...] = (), ae_title: str = DEFAULT_AE_TITLE,
           host: str = "", quiet_s: float = DEFAULT_QUIET_S, stop: threading.Event | None = None,
           memory_bytes: int | None = None) -> Iterator[Event]:
    """Receive until `stop` is set or the caller stops iterating (Ctrl+C); the server is shut down
    on the way out. `allowed`: the calling AE titles accepted (at least one). `memory_bytes`: what
    the associations may send at once (default: the memory budget of case.headers)."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made at import from tables
    allowed = tuple(check_ae_title(title) for title in allowed)
    if not allowed:
        raise ValueError("no calling AE title is allowed: name the scanner's")
    into = Path(into)
    events: queue.Queue[Event] = queue.Queue()
    try:
        receiver = Receiver(into, quiet_s, events, memory_bytes)
    except OSError as error:
        raise WriteError(into, f"received sweeps cannot be kept there ({error.strerror or error})",
                         "Choose a folder you can write to.") from None
    ae = AE(ae_title=check_ae_title(ae_title))
    ae.require_called_aet, ae.require_calling_aet = True, list(allowed)
    for context in AllStoragePresentationContexts:
        assert context.abstract_syntax is not None  # pynetdicom's own list names each
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    server = ae.start_server((host, port), block=False, evt_handlers=receiver.handlers())
    assert server is not None  # not blocking: the server is returned
    try:
        yield Event(LISTENING, f"listening as {ae.ae_title} on port {server.server_address[1]} for "
                               f"{', '.join(allowed)}; received series go into {into}")
        while not (stop and stop.is_set()):
            try:
                yield events.get(timeout=0.2)
                continue
            except queue.Empty:
                pass
            receiver.complete_quiet()
    finally:
        server.shutdown()
        while not events.empty():  # what the last associations did, said in the log at least
            log.info("%s", events.get().message)


def _write_instance(file, event) -> None:
    from pydicom.filewriter import write_file_meta_info
    file.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(file, event.file_meta)
    file.write(event.request.DataSet.getbuffer())  # as received: no decoding, no re-encoding, no copy


def _caller(event) -> str:
    title = event.assoc.requestor.ae_title
    return title.strip() if isinstance(title, str) else str(title)


def _series_name(series: Path) -> str:
    """`<study date>_<time>_<modality>_S<series number>_<key>`, from the first instance's header: no patient's name."""
    import pydicom
    try:
        # a regular file only: a pipe put there (a tampered folder) would block the receiver for good
        first = next(path for path in sorted(series.glob("*.dcm")) if stat.S_ISREG(os.lstat(path).st_mode))
        header = pydicom.dcmread(first, stop_before_pixels=True)
        parts = [str(header.get(name) or "").strip().split(".")[0] for name in ("StudyDate", "StudyTime", "Modality")]
        number = str(header.get("SeriesNumber", "")).strip()  # 0 is a series number too
    except Exception:  # noqa: BLE001 - no first file, or an unreadable header: a name is still owed
        parts, number = [], ""
    words = [part[:_NAME_PART] for part in parts if part.isascii() and part.isalnum()]
    words += [f"S{number[:_NAME_PART]}"] if number.isascii() and number.isdigit() else []
    return "_".join([*words, series.name[:8]])


def _real_folder(path: Path) -> bool:
    """A folder, not a link to one (links are not followed)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _free_name(folder: Path, name: str) -> Path:
    """`name` in `folder`, or `name-2`, `name-3`... when taken (a series sent again appears again)."""
    target, number = folder / name, 1
    while target.exists():
        number += 1
        target = folder / f"{name}-{number}"
    return target
