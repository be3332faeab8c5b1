"""Receiving from the scanner while the window is open: `fetal-iqa listen`'s C-STORE receiver
(pacs/listen.py) in a thread, as Settings say. Each study received becomes cases of the receive
folder, which the worklist shows: opened on the first arrival when no other folder is open."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..pacs.listen import FAILED, LISTENING, RECEIVED
from .workers import ListenThread
from .worklist_panel import WorklistPanel

log = logging.getLogger(__name__)

STOP_WAIT_MS = 10_000  # the receiver stops within a poll (0.2 s), unless an association is finishing
FAILURE_ALERT_GAP_S = 60.0  # a full disk refuses every instance of a study: one dialog, the others in the status line

_stopping: set[ListenThread] = set()  # kept until they end: a QThread destroyed running takes the app down


class ScannerReceiver(QObject):
    status = Signal(str)
    alert = Signal(str, str)  # title, message
    listening_changed = Signal(str)  # what the status line shows while receiving; "" when not

    def __init__(self, worklist: WorklistPanel, parent=None):
        super().__init__(parent)
        self.worklist = worklist
        self.worker: ListenThread | None = None  # not `thread`: QObject.thread() is Qt's
        self.running: tuple | None = None  # the settings' `receiving()` that the thread runs
        self._failure_alerted: float | None = None  # when the last failure was a dialog (time.monotonic)

    def apply(self, settings) -> None:
        """Receive as `settings` say: start, stop, or restart with the new port, titles or folder."""
        wanted = settings.receiving()
        if wanted is not None and wanted == self.running:
            return
        self.stop()
        if wanted is None:
            if settings.receive_on:
                self.alert.emit("Not receiving from the scanner",
                                "Receiving is on, but it needs the folder received sweeps go into and the AE title "
                                "of at least one scanner it accepts: set them in File > Settings.")
            return
        folder, port, allowed, title = wanted
        # pynetdicom (and pydicom) imported here, before the thread: pydicom's circular imports fail
        # ("partially initialized module") when two threads import it at once, as the worklist does
        import pynetdicom  # noqa: F401
        self.running = wanted
        self.worker = thread = ListenThread(folder, port, allowed, title)
        thread.said.connect(lambda kind, message, folders: self._on_event(thread, kind, message, folders))
        thread.failed.connect(lambda message: self._on_failed(thread, message))
        thread.start()

    def stop(self) -> None:
        thread, self.worker, self.running = self.worker, None, None
        if thread is None:  # not receiving: nothing to take off the status line
            return
        self.listening_changed.emit("")
        thread.stop()
        if not thread.wait(STOP_WAIT_MS):
            log.warning("the receiver is still finishing an association; it stops when that ends")
            _stopping.add(thread)
            thread.finished.connect(lambda: _stopping.discard(thread))

    shutdown = stop

    def _on_event(self, thread: ListenThread, kind: str, message: str, folders: list) -> None:
        if thread is not self.worker:
            return  # a receiver stopped since: what it says no longer describes the window
        said = message[:1].upper() + message[1:] + "."
        if kind == LISTENING:
            self.listening_changed.emit(f"Receiving as {thread.ae_title} on port {thread.port}")
            self.status.emit(said)
        elif kind == RECEIVED:
            self.status.emit(said)
            self._show_arrival(thread.into, said)
        elif kind == FAILED:  # an instance not kept (a full disk...): the scanner was told, and may send again
            log.warning("%s", message)
            if self._failure_alerted is not None and time.monotonic() - self._failure_alerted < FAILURE_ALERT_GAP_S:
                self.status.emit(said)  # not a dialog for each of a study's hundreds of instances
                return
            self._failure_alerted = time.monotonic()
            self.alert.emit("A sweep from the scanner was not received", said)
        else:  # a stranger refused: the log and the status line, not a dialog for every knock
            log.info("%s", message)
            self.status.emit(said)

    def _show_arrival(self, folder: Path, said: str) -> None:
        """The worklist shows what came: it opens the receive folder when nothing is open; a sweep the
        user is reviewing is never taken away."""
        panel = self.worklist
        shown = panel.worklist.folder if panel.worklist else None
        if shown is None and panel.viewer_state.case is None:
            panel.load(folder)
        elif shown == folder:
            panel.rescan()  # at once, not after the folder watcher's delay
        else:
            self.status.emit(f"{said} File > Open Folder ({folder}) shows them.")

    def _on_failed(self, thread: ListenThread, message: str) -> None:
        if thread is not self.worker:
            return
        self.worker, self.running = None, None
        self.listening_changed.emit("")
        self.alert.emit("Cannot receive from the scanner", message)
