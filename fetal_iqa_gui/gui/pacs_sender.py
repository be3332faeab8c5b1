"""File > Send to PACS and File > Send queued files: the case's DICOM outputs stored in the archive
that Settings names, through the outbox, so that what the archive does not store (it is down, it
refuses) stays queued and goes with the next send. The sending runs in a worker; this says how it
went, and how many files wait in the outbox."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from ..base.text import counted
from ..pacs.outbox import Outbox
from ..pacs.send import FAILED, RETRY_DELAYS_S, SENT, WAITING, Progress, Tally
from .settings import AppSettings
from .state import ViewerState
from .workers import PacsSendThread

TITLE = "Send to PACS"


def stay_queued(count: int) -> str:
    return f"{counted(count, 'file')} {'stays' if count == 1 else 'stay'} queued and {'is' if count == 1 else 'are'} " \
           "sent next time (File > Send to PACS, or File > Send queued files)."


class PacsSender(QObject):
    status = Signal(str)
    alert = Signal(str, str)  # title, message
    queued_changed = Signal(int)  # files in the outbox
    sending_changed = Signal(bool)

    retry_delays = RETRY_DELAYS_S  # an archive that cannot be reached is tried again after these (s)

    def __init__(self, state: ViewerState, settings: Callable[[], AppSettings], variant: Callable[[], str],
                 open_settings: Callable[[], None], parent: QWidget):
        super().__init__(parent)
        self.state, self.settings, self.variant, self.open_settings = state, settings, variant, open_settings
        self.window = parent
        self.worker: PacsSendThread | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def send_case(self) -> None:
        """The case's chosen frames and its report, with what earlier sends left for the same archive."""
        if self._refuse_while_busy():
            return
        archive = self._archive()
        if archive is not None:
            self._start(archive, self.state.open_scored.copy(), f"Sending the case to {archive.describe()}…")

    def send_queued(self) -> None:
        """What the outbox holds, each file to the archive it was queued for."""
        if self._refuse_while_busy():
            return
        waiting = self.count()
        if not waiting:
            self.status.emit("Nothing is queued for an archive: the outbox is empty.")
            return
        self._start(None, None, f"Sending {counted(waiting, 'queued file')}…")

    def cancel(self) -> None:
        if self.worker is not None and self.busy:
            self.worker.cancel.set()
            self.status.emit("Stopping the send after the current file…")

    def shutdown(self) -> None:
        """On closing the window: stop between files (what is left stays queued) and wait for that."""
        if self.worker is not None:
            self.worker.cancel.set()
            self.worker.wait()

    def count(self) -> int:
        """Files in the outbox (a folder listing and small records: cheap enough for the GUI thread)."""
        waiting = len(Outbox().entries())
        self.queued_changed.emit(waiting)
        return waiting

    # -- the work ----------------------------------------------------------------------------

    def _refuse_while_busy(self) -> bool:
        if self.busy:
            self.status.emit("A send to the archive is running; wait for it or stop it (Stop sending).")
        return self.busy

    def _archive(self):
        """The archive Settings names; else the user is asked to name one (and it is used if they do)."""
        archive = self.settings().archive()
        if archive is not None:
            return archive
        box = QMessageBox(QMessageBox.Icon.Question, TITLE,
                          "No archive (PACS) is set up to send to. Settings > PACS names it (host, port and AE "
                          "titles) and tests it with a C-ECHO.", parent=self.window)
        open_settings = box.addButton("Open Settings…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is open_settings:
            self.open_settings()
            archive = self.settings().archive()
        if archive is None:
            self.status.emit("Nothing was sent: no archive is set up (File > Settings… > PACS).")
        return archive

    def _start(self, archive, scored, message: str) -> None:
        settings = self.settings()
        self.worker = worker = PacsSendThread(Outbox(), archive, scored, self.variant(), settings.blank_outside_image,
                                              self.retry_delays, self)
        worker.step.connect(self._step)
        worker.done.connect(lambda tally, error, where=archive: self._done(tally, error, where))
        worker.finished.connect(lambda: self.sending_changed.emit(False))
        self.status.emit(message)
        self.sending_changed.emit(True)
        worker.start()

    def _step(self, step: Progress) -> None:
        if step.outcome == WAITING:
            self.status.emit(f"Sending to PACS: {step.message}")
        elif step.outcome in (SENT, FAILED):
            self.status.emit(f"Sending to PACS: {step.done} of {counted(step.total, 'file')}…")

    def _done(self, tally: Tally, error, archive) -> None:
        if self.worker is not None:
            self.worker.wait(5000)  # it said done as its last act: a send asked for in answer is not "busy"
        waiting = self.count()
        where = archive.describe() if archive is not None else "their archives"
        sent = f"Sent {counted(tally.sent, 'file')} to {where}" if tally.sent else ""
        if error is not None:
            message = f"Nothing was sent: {error}" if not tally.sent else f"{sent}; then: {error}"
        elif self.worker is not None and self.worker.cancel.is_set() and waiting:
            self.status.emit(f"Sending stopped after {counted(tally.sent, 'file')} sent. {stay_queued(waiting)}")
            return
        elif tally.kept:
            self.status.emit(f"{sent + '. ' if sent else ''}Not sent: {stay_queued(tally.kept)}")
            self.alert.emit(TITLE, f"{sent + '. ' if sent else ''}{tally.problem}\n\n{stay_queued(tally.kept)}")
            return
        else:
            notes = f" ({'; '.join(tally.notes)})" if tally.notes else ""
            self.status.emit(f"{sent}{notes}." if sent else "Nothing was left to send.")
            return
        self.status.emit(message)
        self.alert.emit(TITLE, message)
