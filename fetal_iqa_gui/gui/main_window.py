"""The main window: lays out the widgets and routes the actions of the table in `actions.py`.

What a frame's score, mask, AC or export is, the core decides (`review.ScoredCase`, through the
state); opening and scoring run in `session.py`, exports in `exporter.py`.
"""

from __future__ import annotations

import logging
from operator import attrgetter
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDialog, QFileDialog, QMainWindow, QMessageBox, QSplitter, QVBoxLayout, QWidget

from ..base.errors import name_choices
from ..case import dicomdir
from ..case.loading import SWEEP_PATTERNS
from ..case.study import PSEUDONYMOUS
from . import dialogs
from . import settings as stored
from .actions import (ACTIONS, CINE_SPEEDS, DEFAULT_CINE_SPEED, MENUS, RECENT_MENU, REDO, SEPARATOR, SPEED_MENU, UNDO,
                      Action)
from .caliper_tool import CaliperTool
from .exporter import Exporter
from .frame_view import FrameView
from . import live_launch
from .live_view import LiveView
from .heat_maps import HeatMaps
from .model_banner import ModelBanner
from .pacs_sender import PacsSender
from .scanner_receiver import ScannerReceiver
from .patient_dialog import ask_patient
from .patient_header import PatientHeader
from .review_panel import ReviewPanel
from .session import ScoringSession
from .settings_dialog import SettingsDialog, window_words
from .spacing_prompt import ask_spacing
from .state import ViewerState
from .status_line import StatusLine
from .thumbnail_strip import ThumbnailStrip
from .worklist_panel import WorklistPanel
from .timeline_widget import TimelineWidget

log = logging.getLogger(__name__)

OPEN_FILTER = f"Sweeps ({SWEEP_PATTERNS});;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, settings: stored.AppSettings | None = None):
        super().__init__()
        name_choices(window_words())  # errors' advice names what to change in Settings
        self.settings = settings or stored.load_settings()
        self.state = ViewerState()
        self.session = ScoringSession(self.state, self.settings, self)
        self.exporter = Exporter(self.state, self.settings, self)
        self.pacs = PacsSender(self.state, lambda: self.settings, self._variant, self.open_settings, self)
        self.last_alert = ""
        self.setWindowTitle("fetal-iqa")
        self.setMinimumSize(900, 600)
        self.setAcceptDrops(True)

        self.frame_view = FrameView(self.state)
        self.timeline = TimelineWidget(self.state)
        self.panel = ReviewPanel(self.state)
        self.banner = ModelBanner(self.state, lambda: self.settings)
        self.patient = PatientHeader(self.state, lambda: self.settings)
        self.thumbnails = ThumbnailStrip(self.state)
        self.heat_maps = HeatMaps(self.state, self.frame_view, lambda: self.session.engine, self)
        self.calipers = CaliperTool(self.state, self.frame_view, self)
        self.calipers.ask_spacing = self.set_pixel_spacing
        self.worklist = WorklistPanel(self.state, self.session)
        self.receiver = ScannerReceiver(self.worklist, self)
        viewer = QSplitter(Qt.Orientation.Vertical)
        viewer.addWidget(self.frame_view)
        viewer.addWidget(self.thumbnails)
        viewer.setStretchFactor(0, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.worklist)
        top.addWidget(viewer)
        top.addWidget(self.panel)
        top.setStretchFactor(1, 4)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.timeline)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.patient)
        layout.addWidget(splitter)
        self.setCentralWidget(central)
        self.status_line = bar = StatusLine(self.cancel_scoring)  # statusBar() is typed QStatusBar
        self.setStatusBar(bar)
        self.status_text, self.progress, self.cancel_button = bar.text, bar.progress, bar.cancel_button
        self.export_folder = bar.export_folder
        self._show_export_folder()

        self.play_timer = QTimer(self, interval=1000 // DEFAULT_CINE_SPEED)
        self.play_timer.timeout.connect(self._play_step)
        self._connect()
        self._build_menus()
        self._update_enabled()
        self.receiver.apply(self.settings)
        geometry = stored.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)

    def _connect(self) -> None:
        state, session = self.state, self.session
        session.status.connect(self.status_text.setText)
        session.progress.connect(self.status_line.show_progress)
        session.alert.connect(self.alert)
        session.opened.connect(lambda _: self._fill_recent())
        session.scoring_changed.connect(self.cancel_button.setVisible)
        self.exporter.status.connect(self.status_text.setText)
        self.exporter.alert.connect(self.alert)
        self.exporter.folder_changed.connect(self._show_export_folder)  # asked by any export, or forgotten
        self.pacs.status.connect(self.status_text.setText)
        self.pacs.alert.connect(self.alert)
        self.pacs.queued_changed.connect(self.status_line.show_outbox)
        self.pacs.sending_changed.connect(self.status_line.stop_sending.setVisible)
        self.status_line.stop_sending.clicked.connect(self.pacs.cancel)
        self.pacs.count()  # what an earlier session left for the archive
        self.receiver.status.connect(self.status_text.setText)
        self.receiver.alert.connect(self.alert)
        self.receiver.listening_changed.connect(self.status_line.show_receiving)
        self.calipers.status.connect(self.status_text.setText)
        self.heat_maps.status.connect(self.status_text.setText)
        self.calipers.alert.connect(self.alert)
        self.worklist.status.connect(self.status_text.setText)
        self.worklist.alert.connect(self.alert)
        self.patient.title_changed.connect(self.setWindowTitle)
        self.patient.edit_requested.connect(self.edit_patient)
        state.case_changed.connect(self._update_enabled)
        state.model_changed.connect(self._update_enabled)
        state.calipers_changed.connect(lambda _: self._update_undo())
        measurements = self.panel.measurements
        measurements.edit_requested.connect(self.calipers.edit_selected)
        measurements.delete_requested.connect(self.calipers.delete_selected)
        for request in (measurements.edit_requested, measurements.delete_requested):
            request.connect(self.frame_view.setFocus)  # A keeps the edit, the arrows step frames again
        self.frame_view.step_requested.connect(lambda n: state.set_frame(state.frame + n))
        self.frame_view.levels_dragged.connect(self.panel.drag_levels)
        self.panel.levels_changed.connect(self.frame_view.set_levels)
        self.panel.editing_done.connect(self.frame_view.setFocus)  # the frame keys work again at once

    # -- menus, built from the action table ---------------------------------------------------

    def _build_menus(self) -> None:
        # hides QWidget.actions() (unused here); the tests and the dialogs read the actions by this name
        self.actions: dict[str, QAction] = {}  # type: ignore[assignment]
        menus = {name: self.menuBar().addMenu(f"&{name}") for name in MENUS}
        menu = menus["File"]
        for entry in ACTIONS:
            if entry == SEPARATOR:
                menu.addSeparator()
            elif entry == RECENT_MENU:
                self.recent_menu = menu.addMenu("Open &Recent")
                self._fill_recent()
            elif entry == SPEED_MENU:
                self._build_speed_menu(menu.addMenu("Cine speed"))
            else:
                assert isinstance(entry, Action) and entry.menu is not None  # the table's entries with a menu
                menu = menus[entry.menu]
                menu.addAction(self._action(entry))

    def _action(self, spec: Action) -> QAction:
        action = QAction(spec.text, self)
        action.setShortcuts([QKeySequence(key) for key in spec.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: attrgetter(spec.name)(self)())  # a dotted name too
        self.addAction(action)  # its keys work with the menu bar hidden too
        self.actions[spec.name] = action
        return action

    def _build_speed_menu(self, menu) -> None:
        group = QActionGroup(self)
        for fps in CINE_SPEEDS:
            action = menu.addAction(f"{fps} frames/s")
            action.setCheckable(True)
            action.setChecked(fps == DEFAULT_CINE_SPEED)
            action.triggered.connect(lambda _checked=False, f=fps: self.play_timer.setInterval(1000 // f))
            group.addAction(action)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in stored.recent_files():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(Path(p)))
        self.recent_menu.setEnabled(bool(stored.recent_files()))

    def _update_enabled(self) -> None:
        for entry in ACTIONS:
            if isinstance(entry, Action) and (entry.needs_case or entry.needs_scores):
                ready = self.state.model is not None if entry.needs_scores else self.state.case is not None
                self.actions[entry.name].setEnabled(ready)
        self._update_undo()

    def _update_undo(self) -> None:
        """Undo and Redo say what they would do, and are there only when there is something to do."""
        history = self.state.history
        for name, change, word in ((UNDO, history.next_undo, "Undo"), (REDO, history.next_redo, "Redo")):
            self.actions[name].setEnabled(change is not None)
            self.actions[name].setText(f"{word} {change.what}" if change else word)

    # -- opening ----------------------------------------------------------------------------

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a sweep", "", OPEN_FILTER)
        if path:
            self.open_path(Path(path))

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM series folder")
        if folder:
            self.open_path(Path(folder))

    def open_demo(self) -> None:
        """The built-in synthetic sweep, made on first use (off the GUI thread), with the demo model."""
        self.session.open(None)

    def open_demo_segmented(self) -> None:
        """The demo sweep with the demo segmentation model: masks, their AC and proposed calipers."""
        self.session.open(None, demo_task="segmentation")

    def open_live(self) -> None:
        """A camera (capture device), video file or picture folder, scored live and recorded as a case."""
        asked = live_launch.ask_source(self)
        if asked is not None:
            self.live_view = live_launch.start(self, asked.source, asked.record, region=asked.region,
                                               spacing_mm=asked.spacing_mm)

    def start_live(self, source: str, record: Path | None, predict=None, make_explainer=None) -> LiveView:
        """The live view on `source` (`predict`, `make_explainer`: stand-ins for the model and its heat
        maps, for tests); on stop the recording opens."""
        self.live_view = live_launch.start(self, source, record, predict, make_explainer)
        return self.live_view

    def open_path(self, path: Path) -> None:
        """A sweep file opens; a folder, or an exam's DICOMDIR (a USB stick, a CD), opens as a worklist
        of its cases (a folder of one DICOM series is one case)."""
        path = Path(path)
        if path.is_dir() or dicomdir.is_dicomdir(path):
            self.worklist.load(path if path.is_dir() else path.parent)
        else:
            self.session.open(path)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.open_path(Path(urls[0].toLocalFile()))

    def cancel_scoring(self) -> None:
        self.session.cancel()

    def set_pixel_spacing(self) -> bool:
        """Ask for the spacing (the file states none, or a wrong one); True once there is one."""
        spacing = ask_spacing(self, self.state.open_case.spacing)
        if spacing is not None:
            changed = self.state.set_spacing(spacing)
            again = f"; {changed} kept measurement{'s' if changed != 1 else ''} measured again" if changed else ""
            self.status_text.setText(f"Pixel spacing {spacing.describe()}: measurements in mm use it{again}.")
        return self.state.open_case.spacing.known

    def edit_patient(self) -> None:
        """The patient and exam of a file that names none; a DICOM's are its header's."""
        if self.state.open_case.study.from_dicom:
            self.status_text.setText("This DICOM's patient and exam come from its header; they are not changed here.")
            return
        study = ask_patient(self, self.state.open_case, self.settings.deidentified_view)
        if study is not None:
            self.state.set_study(study)
            self.status_text.setText(f"No patient details: the report and the outputs name the case {study.patient_id}."
                                     if study.origin == PSEUDONYMOUS else
                                     "Patient details entered: the report and the outputs carry them.")

    def escape(self) -> None:
        """Esc: the caliper in hand first (as on an ultrasound machine), else the scoring."""
        if not self.calipers.cancel():
            self.cancel_scoring()

    # -- navigation -------------------------------------------------------------------------

    def step_forward(self): self.state.set_frame(self.state.frame + 1)
    def step_back(self): self.state.set_frame(self.state.frame - 1)
    def jump_forward(self): self.state.set_frame(self.state.frame + 10)
    def jump_back(self): self.state.set_frame(self.state.frame - 10)
    def first_frame(self): self.state.set_frame(int(self.state.open_case.layout.image_frames()[0]))
    def last_frame(self): self.state.set_frame(int(self.state.open_case.layout.image_frames()[-1]))
    def fit_view(self): self.frame_view.fit()
    def reset_levels(self): self.panel.reset_levels()
    def toggle_mask(self): self.frame_view.toggle_mask()
    def toggle_heat_map(self): self.heat_maps.toggle()
    def next_sweep(self): self._go_sweep(1)
    def previous_sweep(self): self._go_sweep(-1)
    def next_good(self): self._go_good(1)
    def previous_good(self): self._go_good(-1)

    def _go_sweep(self, direction: int) -> None:
        layout = self.state.open_case.layout
        number = layout.sweep_of(self.state.frame).number + direction
        if 1 <= number <= len(layout.sweeps) and len(frames := layout.image_frames(layout.sweeps[number - 1])):
            self.state.set_frame(int(frames[0]))

    def _go_good(self, direction: int) -> None:
        frame = self.state.open_scored.next_good(self.state.frame, direction)
        if frame is None:
            self.status_text.setText("No further good frame in that direction.")
        else:
            self.state.set_frame(frame)

    def best_frame(self) -> None:
        pick = self.state.open_scored.best_frame()
        if pick:
            self.state.set_frame(pick.frame)

    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.play_timer.stop()
        else:
            self.play_timer.start()

    def _play_step(self) -> None:
        self.state.set_frame((self.state.frame + 1) % self.state.open_case.n_frames)

    # -- measurement, exports -----------------------------------------------------------------

    def quick_export(self):
        self.exporter.quick_export()
        self._show_export_folder()  # the folder it used, however the settings came to name it

    def _variant(self) -> str:
        """How the model runs, for the DICOM report (device, precision)."""
        return self.session.engine.variant if self.session.engine else ""

    def _show_export_folder(self) -> None:
        self.status_line.show_export_folder(self.exporter.export_folder_text())

    def alert(self, title: str, message: str) -> None:
        """A warning that does not block the window (and so never freezes scoring or tests)."""
        self.last_alert = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- settings, help, banner -------------------------------------------------------------

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.result_settings() == self.settings:
            return
        old, new = self.settings, dialog.result_settings()
        model_changed = new.model_choice() != old.model_choice()
        self.settings = self.session.settings = self.exporter.settings = new
        stored.save_settings(new)
        self._show_export_folder()
        self.patient.refresh()  # the de-identified view may have changed
        if model_changed:
            self.session.demo_mode = False  # the user chose a model: it applies to the demo sweep too
            self.banner.refresh()
        self.receiver.apply(new)
        if model_changed or new.engine() != old.engine():  # the same model elsewhere still keeps its demo
            self.session.rescore()

    def show_shortcuts(self) -> None:
        dialogs.shortcuts_dialog(self).exec()

    def show_about(self) -> None:
        dialogs.about_box(self, self.state.model.name if self.state.model else None).exec()

    def closeEvent(self, event) -> None:
        self.play_timer.stop()
        self.exporter.cancel()
        self.pacs.shutdown()
        self.receiver.shutdown()
        self.session.shutdown()
        self.heat_maps.shutdown()
        if self.exporter.worker is not None:
            self.exporter.worker.wait()
        stored.save_window_geometry(self.saveGeometry())
        super().closeEvent(event)

