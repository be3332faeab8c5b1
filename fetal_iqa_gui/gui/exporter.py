"""The window's exports: which frames, where to, asked once; the writing runs in a worker with
progress and cancel. What a frame's export holds is the core's (`ScoredCase.export`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from PySide6.QtCore import QBuffer, QIODevice, QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog, QWidget

from ..base.errors import FetalIqaError, NameTaken, WriteError
from ..base.text import counted
from . import settings as stored
from .state import ViewerState
from .workers import DicomThread, ExportThread, ReportThread

if TYPE_CHECKING:
    from .session import ScoringSession
    from .timeline_widget import TimelineWidget

CONFIRM_ABOVE = 20  # frames: larger exports are confirmed first


class WindowParts(Protocol):
    """What the report and the DICOM export use of the main window (not imported: it imports this)."""

    timeline: TimelineWidget
    session: ScoringSession


class Exporter(QObject):
    status = Signal(str)
    alert = Signal(str, str)  # title, message
    finished = Signal(object)  # ExportReport
    report_written = Signal(object)  # the report's page
    folder_changed = Signal()  # the export folder (Ctrl+E's) was chosen or forgotten

    def __init__(self, state: ViewerState, settings: stored.AppSettings, parent: QWidget):
        super().__init__(parent)
        self.state, self.settings, self.window = state, settings, parent
        self.worker: ExportThread | ReportThread | DicomThread | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def _settle(self) -> None:
        """The worker said it is done, as its last act: let it end, so that an export asked for in
        answer to that (a second Ctrl+E) is not refused as "running"."""
        if self.worker is not None:
            self.worker.wait(5000)

    @property
    def _parts(self) -> WindowParts:
        return cast(WindowParts, self.window)  # the main window

    def export_folder_text(self) -> str:
        return self.settings.export_dir or "not set (the first quick export asks)"

    # -- the four exports ------------------------------------------------------------------

    def quick_export(self) -> None:
        """The current frame into the export folder, asked once; a name taken gets -2, -3, ..."""
        folder = Path(self.settings.export_dir) if self.settings.export_dir else self.ask_folder()
        if folder is not None:
            self.export([self.state.frame], folder, rename=True)

    def export_current(self) -> None:
        self.export([self.state.frame])

    def export_best(self) -> None:
        bests = [best for best in self.state.open_scored.best_per_sweep() if best.candidate]
        if not bests:
            self.status.emit("No frame is scored yet: nothing to export.")
            return
        below = [best for best in bests if not best.good]
        if below and not self.confirm(
                f"{len(below)} of {counted(len(bests), 'sweep')} {'has' if len(below) == 1 else 'have'} "
                f"no good frame ({'; '.join(f'sweep {best.sweep}: {best.verdict}' for best in below)}). "
                "Export their top frames anyway, marked 'below-threshold' in their names?", "Export anyway"):
            bests = [best for best in bests if best.good]
        self.export([best.frame for best in bests if best.frame is not None])

    def export_good(self) -> None:
        frames = [int(f) for f in self.state.open_scored.good_frames()]
        if not frames:
            self.status.emit(f"No frame reaches the threshold {self.state.threshold:.3f}: nothing to export.")
            return
        if len(frames) > CONFIRM_ABOVE and not self.confirm(
                f"Export all {len(frames)} good frames (a PNG and a sidecar each)?", "Export"):
            return
        self.export(frames)

    def export_csv(self) -> None:
        case = self.state.open_case
        default = Path(self.settings.export_dir or Path.home()) / f"{case.case_id}_scores.csv"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export scores", str(default), "CSV (*.csv)")
        if not path:
            return
        if Path(path).resolve() == case.source.resolve():
            self.alert.emit("Export", f"'{path}' is the sweep itself; choose another name.")
            return
        try:  # the dialog has asked before replacing a file
            self.state.open_scored.write_csv(path, overwrite=True)
            self.status.emit(f"Scores written to {path}.")
        except FetalIqaError as error:
            self.alert.emit("Export", str(error))

    def export_report(self) -> None:
        """The case report: each sweep's chosen frame (PNG + sidecar) and one printable HTML page."""
        folder = self.ask_folder()
        if folder is None:
            return
        if self.busy:
            self.status.emit("An export is running; wait for it or cancel it.")
            return
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        line = self._parts.timeline.current_line
        line.hide()  # the frame on screen means nothing on paper
        self._parts.timeline.grab().save(buffer, "PNG")  # a widget is grabbed on the GUI thread; the rest is not
        line.show()
        self.worker = worker = ReportThread(self.state.open_scored.copy(), folder, bytes(buffer.data().data()),
                                            self.settings.blank_outside_image, self, self._heat_maps_of())
        worker.done.connect(self._report_done)
        self.status.emit(f"Writing the case report to {folder}…")
        worker.start()

    def _report_done(self, page, exported, folder: Path) -> None:
        self._settle()
        if page is None:
            error = exported.problems[0]
            message = str(error) + (self._forget_folder(folder) if exported.folder_failed else "")
            self.status.emit(f"The report was not written: {message}")
            self.alert.emit("Export report", message)
            return
        blanked = f", blanked {exported.blanked}" if exported.blanked else ""
        self.status.emit(f"Report written: {page} ({len(exported.frames)} frames beside it{blanked}).")
        self.report_written.emit(page)

    def export_dicom(self) -> None:
        """Each sweep's chosen frame as a DICOM image and a Structured Report, for the archive (PACS)."""
        if self.busy:
            self.status.emit("An export is running; wait for it or cancel it.")
            return
        folder = self.ask_folder()
        if folder is None:
            return
        engine = self._parts.session.engine
        self.worker = worker = DicomThread(self.state.open_scored.copy(), folder, engine.variant if engine else "",
                                           self.settings.blank_outside_image, self)
        worker.done.connect(self._dicom_done)
        self.status.emit(f"Writing DICOM to {folder}…")
        worker.start()

    def _dicom_done(self, written, error, folder: Path) -> None:
        self._settle()
        if written is None:
            message = f"Nothing was exported to DICOM: {error}" + (
                self._forget_folder(folder) if isinstance(error, WriteError) and not isinstance(error, NameTaken)
                else "")
            self.status.emit(message)
            self.alert.emit("Export to DICOM", message)
            return
        self.status.emit(written.message(folder))

    # -- the work ----------------------------------------------------------------------------

    def ask_folder(self) -> Path | None:
        start = self.settings.export_dir or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self.window, "Export to folder", start)
        if not folder:
            return None
        self._set_folder(folder)
        return Path(folder)

    def _set_folder(self, folder: str) -> None:
        self.settings.export_dir = folder
        stored.save_settings(self.settings)
        self.folder_changed.emit()

    def _forget_folder(self, folder: Path) -> str:
        """A folder that failed is no longer Ctrl+E's: the next quick export asks. Returns what to add
        to the message."""
        if not self.settings.export_dir or Path(self.settings.export_dir) != Path(folder):
            return ""
        self._set_folder("")
        return " Ctrl+E will ask for another folder."

    def confirm(self, question: str, yes: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Export", question, parent=self.window)
        accept = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is accept

    def export(self, frames: list[int], folder: Path | None = None, rename: bool = False) -> None:
        """Export frames in the background; the result is told in the status bar (and an alert on problems)."""
        if self.busy:
            self.status.emit("An export is running; wait for it or cancel it.")
            return
        padding = [f for f in frames if self.state.open_case.layout.padding[f]]
        if padding and len(padding) == len(frames):  # say so before asking for a folder
            self.alert.emit("Export", f"Frame {padding[0]} is padding, not an image; nothing was exported.")
            return
        folder = folder or self.ask_folder()
        if folder is None:
            return
        self.worker = worker = ExportThread(self.state.open_scored.copy(), frames, folder, self.settings.export_overlay,
                                            rename, self.settings.sidecar_name_only, self.settings.blank_outside_image,
                                            self, self._heat_maps_of())
        worker.done.connect(self._done)
        if len(frames) > 1:
            dialog = QProgressDialog(f"Exporting {len(frames)} frames…", "Cancel", 0, len(frames), self.window)
            dialog.setWindowModality(Qt.WindowModality.NonModal)
            dialog.setMinimumDuration(500)
            dialog.canceled.connect(worker.requestInterruption)
            worker.progress.connect(lambda done, total: dialog.setValue(done))
            worker.finished.connect(dialog.deleteLater)
        self.status.emit(f"Exporting to {folder}…")
        worker.start()

    def _heat_maps_of(self):
        """The engine whose heat maps the export adds (Settings: export heat maps), else None."""
        return self._parts.session.engine if self.settings.export_heat_maps else None

    def _done(self, report, folder: Path) -> None:
        self._settle()
        message = report.message(folder) + (self._forget_folder(folder) if report.folder_failed else "")
        self.status.emit(message)
        if report.problems:
            self.alert.emit("Export", message)
        self.finished.emit(report)

    def cancel(self) -> None:
        if self.worker is not None and self.busy:
            self.worker.requestInterruption()
