"""The main window: wires the state, the widgets and the background threads together."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QSpinBox, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ..export import ModelInfo, export_frame, frame_basename, overlay_image, write_scores_csv
from ..fileio import ExportError
from ..measure import MeasurementError, measure_abdomen
from ..model.loading import DEMO_LABEL, ModelSpec, real_weights_configured
from ..preprocess import unsquare_mask
from ..resources import MODEL_WEIGHTS_DIR
from ..scoring import EngineSettings
from ..selection import best_frame, next_good
from ..sweep import SUPPORTED_DESCRIPTION
from . import settings as stored
from .best_frames_widget import BestFramesWidget
from .frame_view import FrameView
from .settings_dialog import SettingsDialog
from .shortcuts import SHORTCUTS
from .state import ViewerState
from .timeline_widget import TimelineWidget
from .workers import LoadThread, ScoringThread

log = logging.getLogger(__name__)

OPEN_FILTER = f"Sweeps ({' '.join('*' + s for s in ('.mha', '.mhd', '.nii', '.nii.gz', '.nrrd', '.dcm', '.png', '.jpg'))});;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, settings: stored.AppSettings | None = None):
        super().__init__()
        self.settings = settings or stored.load_settings()
        self.state = ViewerState()
        self.loader: LoadThread | None = None
        self.scorer: ScoringThread | None = None
        self.engine = None
        self.last_alert = ""
        self.demo_mode = False  # the demo sweep always runs the demo model, whatever the settings say
        self.setWindowTitle("fetal-iqa")
        self.setMinimumSize(900, 600)
        self.setAcceptDrops(True)

        self.frame_view = FrameView(self.state)
        self.frame_view.step_requested.connect(lambda n: self.state.set_frame(self.state.frame + n))
        self.timeline = TimelineWidget(self.state)
        self.best_frames = BestFramesWidget(self.state)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setAccessibleName("Model notice")
        self.banner.setStyleSheet("QLabel { background: #7a5200; color: white; padding: 6px; }")
        self.banner.hide()

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(QLabel("<b>Best frames</b>"))
        side_layout.addWidget(self.best_frames)
        self.threshold_box = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.01)
        self.threshold_box.setAccessibleName("Threshold")
        self.threshold_box.setToolTip("Score a frame must reach to count as good")
        self.threshold_box.valueChanged.connect(self.state.set_threshold)
        self.state.threshold_changed.connect(self._sync_threshold_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Threshold"))
        row.addWidget(self.threshold_box)
        side_layout.addLayout(row)
        self.ac_label = QLabel()
        self.ac_label.setWordWrap(True)
        side_layout.addWidget(self.ac_label)
        side_layout.addLayout(self._levels_row())

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.frame_view)
        top.addWidget(side)
        top.setStretchFactor(0, 4)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.timeline)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(splitter)
        self.setCentralWidget(central)

        self.status_text = QLabel("Open a sweep: File > Open (Ctrl+O), or drop a file here.")
        self.progress = QProgressBar(maximumWidth=180)
        self.progress.setAccessibleName("Scoring progress")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop scoring (Esc); the scores so far stay")
        self.cancel_button.clicked.connect(self.cancel_scoring)
        self.cancel_button.hide()
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)

        self.play_timer = QTimer(self, interval=80)
        self.play_timer.timeout.connect(self._play_step)
        self.state.frame_changed.connect(lambda _: self._update_measurement())
        self.state.scores_changed.connect(self._update_measurement)
        self._build_menus()
        self._update_banner()
        geometry = stored.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)

    def _levels_row(self) -> QHBoxLayout:
        """Window/level of the display (the exported pixels never change)."""
        self.window_box = QSpinBox(minimum=1, maximum=255, value=255, prefix="W ")
        self.level_box = QSpinBox(minimum=0, maximum=255, value=128, prefix="L ")
        for box, name in ((self.window_box, "Window"), (self.level_box, "Level")):
            box.setAccessibleName(name)
            box.setToolTip(f"Display {name.lower()} (grey levels); the exported pixels are unchanged")
            box.valueChanged.connect(self._apply_levels)
        reset = QPushButton("Reset")
        reset.setToolTip("Reset window/level to the full range")
        reset.clicked.connect(self.reset_levels)
        row = QHBoxLayout()
        row.addWidget(self.window_box)
        row.addWidget(self.level_box)
        row.addWidget(reset)
        return row

    def _apply_levels(self) -> None:
        half = self.window_box.value() / 2
        self.frame_view.set_levels(self.level_box.value() - half, self.level_box.value() + half)

    def reset_levels(self) -> None:
        self.window_box.setValue(255)
        self.level_box.setValue(128)
        self.frame_view.reset_levels()

    # -- menus and shortcuts ------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self._action("Open…", self.open_dialog, "Ctrl+O"))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._fill_recent()
        file_menu.addAction(self._action("Open the demo sweep", self.open_demo))
        file_menu.addSeparator()
        file_menu.addAction(self._action("Export current frame…", self.export_current, "Ctrl+E"))
        file_menu.addAction(self._action("Export best frame of each sweep…", self.export_best))
        file_menu.addAction(self._action("Export all good frames…", self.export_good))
        file_menu.addAction(self._action("Export scores as CSV…", self.export_csv))
        file_menu.addSeparator()
        file_menu.addAction(self._action("Settings…", self.open_settings, "Ctrl+,"))
        file_menu.addAction(self._action("Quit", self.close, "Ctrl+Q"))
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self._action("Fit to window", self.fit_view))
        view_menu.addAction(self._action("Reset window/level", self.reset_levels))
        view_menu.addAction(self._action("Show/hide mask outline", self.toggle_mask))
        self.speed_actions = []
        speed_menu = view_menu.addMenu("Cine speed")
        for fps in (5, 12, 25, 50):
            speed_menu.addAction(self._action(f"{fps} frames/s", lambda f=fps: self.play_timer.setInterval(1000 // f)))
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("Keyboard shortcuts", self.show_shortcuts, "F1"))
        help_menu.addAction(self._action("About", self.show_about))
        for shortcut in SHORTCUTS:
            if shortcut.keys[0] in ("Ctrl+O", "Ctrl+E"):
                continue  # bound by their menu items
            action = QAction(shortcut.description, self)
            action.setShortcuts([QKeySequence(k) for k in shortcut.keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(getattr(self, shortcut.action))
            self.addAction(action)

    def _action(self, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in stored.recent_files():
            self.recent_menu.addAction(self._action(path, lambda p=path: self.open_path(Path(p))))
        self.recent_menu.setEnabled(bool(stored.recent_files()))

    # -- opening ----------------------------------------------------------------------------

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a sweep", "", OPEN_FILTER)
        if path:
            self.open_path(Path(path))

    def open_demo(self) -> None:
        """The built-in synthetic sweep, made on first use (off the GUI thread), with the demo model."""
        from .app import demo_sweep_path
        self.demo_mode = True
        self.open_path(demo_sweep_path)

    def open_path(self, path) -> None:
        """Open a sweep file (or, given a function, the path it returns) off the GUI thread."""
        if self.loader is not None and self.loader.isRunning():
            return
        self.demo_mode = callable(path) and self.demo_mode
        self.status_text.setText(f"Opening {getattr(path, 'name', 'the demo sweep')}…")
        self.progress.setRange(0, 0)  # busy
        self.progress.show()
        self.loader = LoadThread(path, self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.start()

    def _on_loaded(self, sweep) -> None:
        self.cancel_scoring(wait=True)
        self.progress.hide()
        self.state.set_sweep(sweep)
        self.setWindowTitle(f"fetal-iqa: {sweep.source.name}")
        if sweep.source.exists():
            stored.add_recent_file(str(sweep.source))
            self._fill_recent()
        self.start_scoring()

    def _on_load_failed(self, message: str) -> None:
        self.progress.hide()
        log.warning(message)
        self.status_text.setText(message)
        if self.demo_mode:
            self.alert("Cannot open the demo sweep", message)
        else:
            self.alert("Cannot open the file", f"{message}\n\nSupported: {SUPPORTED_DESCRIPTION}.")

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.open_path(Path(urls[0].toLocalFile()))

    # -- scoring ----------------------------------------------------------------------------

    def model_spec(self) -> ModelSpec:
        s = self.settings
        if s.adapter and not self.demo_mode:
            return ModelSpec(weights=Path(s.weights) if s.weights else None, config=Path(s.config) if s.config else None,
                             adapter=Path(s.adapter))
        return ModelSpec.demo_model(s.demo_task)

    def engine_settings(self) -> EngineSettings:
        import os
        cores = os.cpu_count() or 1
        # keep a core for the window where there are enough to spare one
        threads = cores - 1 if cores >= 4 else cores
        return EngineSettings(self.settings.device, self.settings.precision, self.settings.batch_size or None, threads)

    def start_scoring(self) -> None:
        if self.state.sweep is None:
            return
        self.cancel_scoring(wait=True)
        self.scorer = ScoringThread(self.state.sweep, self.model_spec(), self.engine_settings(), self)
        self.scorer.model_ready.connect(self._on_model_ready)
        self.scorer.cached.connect(lambda found: self.state.reset_scores(found.scores, found.masks))
        self.scorer.batch_ready.connect(self._on_batch)
        self.scorer.failed.connect(self._on_scoring_failed)
        self.scorer.notice.connect(lambda text: self.status_text.setText(text))
        self.scorer.finished.connect(self._on_scoring_finished)
        self.status_text.setText("Loading the model…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.scorer.start()

    def _on_model_ready(self, engine) -> None:
        self.engine = engine
        self.state.reset_scores()
        self.state.set_model(engine.model)
        if self.settings.threshold > 0:
            self.state.set_threshold(self.settings.threshold)
        self._update_banner()
        images = self.state.sweep.layout.n_images
        self.progress.setRange(0, images)

    def _on_batch(self, batch, throughput) -> None:
        self.state.add_scores(batch.frames, batch.scores, batch.masks)
        images = self.state.sweep.layout.n_images
        done = self.state.scored_count
        self.progress.setValue(done)
        left = throughput.seconds_left
        self.status_text.setText(
            f"{self.engine.model.name} | {self.engine.description} | scored {done}/{images} | "
            f"{throughput.frames_per_second:.1f} frames/s" + (f" | {left:.0f} s left" if left is not None else ""))

    def _on_scoring_failed(self, message: str) -> None:
        log.warning(message)
        self.status_text.setText(message)
        self.alert("Scoring", message)

    def _on_scoring_finished(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        if self.state.sweep is None or self.engine is None:
            return
        images = self.state.sweep.layout.n_images
        done = self.state.scored_count
        best = best_frame(self.state.scores, self.state.sweep.layout)
        summary = f"{self.engine.model.name} | {self.engine.description} | scored {done}/{images}"
        if done < images:
            summary += " (stopped: the scores so far are kept)"
        if best:
            summary += f" | best frame {best.frame} ({best.score:.3f})"
        self.status_text.setText(summary)

    def cancel_scoring(self, wait: bool = False) -> None:
        if self.scorer is not None and self.scorer.isRunning():
            self.scorer.requestInterruption()
            if wait:
                self.scorer.wait()

    # -- navigation -------------------------------------------------------------------------

    def step_forward(self): self.state.set_frame(self.state.frame + 1)
    def step_back(self): self.state.set_frame(self.state.frame - 1)
    def jump_forward(self): self.state.set_frame(self.state.frame + 10)
    def jump_back(self): self.state.set_frame(self.state.frame - 10)
    def first_frame(self): self.state.set_frame(0)
    def last_frame(self): self.state.set_frame(len(self.state.scores) - 1)
    def fit_view(self): self.frame_view.fit()
    def toggle_mask(self): self.frame_view.toggle_mask()

    def next_good(self) -> None:
        self._jump_good(1)

    def previous_good(self) -> None:
        self._jump_good(-1)

    def _jump_good(self, direction: int) -> None:
        frame = next_good(self.state.scores, self.state.threshold, self.state.frame, direction)
        if frame is None:
            self.status_text.setText("No further good frame in that direction.")
        else:
            self.state.set_frame(frame)

    def best_frame(self) -> None:
        if self.state.sweep is None:
            return
        pick = best_frame(self.state.scores, self.state.sweep.layout)
        if pick:
            self.state.set_frame(pick.frame)

    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.play_timer.stop()
        elif self.state.sweep is not None:
            self.play_timer.start()

    def _play_step(self) -> None:
        n = self.state.sweep.n_frames
        self.state.set_frame((self.state.frame + 1) % n)

    # -- measurement ------------------------------------------------------------------------

    def mask_of(self, frame: int) -> np.ndarray | None:
        """The SEG model's mask of a scored frame, at the frame's own resolution."""
        state = self.state
        if state.masks is None or state.sweep is None or math.isnan(state.scores[frame]) or not state.masks[frame].any():
            return None
        return unsquare_mask(state.masks[frame], state.sweep.frames.shape[1:])

    def measurement_of(self, frame: int):
        mask = self.mask_of(frame)
        if mask is None:
            return None
        try:
            return measure_abdomen(mask, self.state.sweep.spacing_mm[0])
        except MeasurementError:
            return None

    def current_measurement(self):
        return self.measurement_of(self.state.frame) if self.state.sweep is not None else None

    def overlay_of(self, frame: int, measurement) -> np.ndarray:
        score = float(self.state.scores[frame])
        slot = self.state.sweep.layout.sweep_of(frame)
        caption = (f"frame {frame}, sweep {slot.number}, score {score:.3f}"
                   + (f", AC {measurement.ac_mm:.1f} mm" if measurement else "")
                   + (" (demo model)" if self.state.model and self.state.model.is_demo else ""))
        return overlay_image(self.state.sweep.frames[frame], caption, self.mask_of(frame),
                             measurement.ellipse if measurement else None)

    def _update_measurement(self) -> None:
        measurement = self.current_measurement()
        self.frame_view.show_ellipse(measurement.ellipse if measurement else None)
        if measurement is None:
            self.ac_label.setText("" if self.state.masks is None else "AC: no abdomen mask on this frame")
        else:
            self.ac_label.setText(f"<b>AC {measurement.ac_mm:.1f} mm</b> (ellipse fit {measurement.fit_quality})")

    # -- export -----------------------------------------------------------------------------

    def _model_info(self) -> ModelInfo | None:
        model = self.state.model
        return None if model is None else ModelInfo(model.name, model.identity, self.state.threshold, model.is_demo)

    def _export_dir(self) -> Path | None:
        start = self.settings.export_dir or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", start)
        if not folder:
            return None
        self.settings.export_dir = folder
        stored.save_settings(self.settings)
        return Path(folder)

    def export_frames(self, frames: list[int], folder: Path | None = None) -> list[Path]:
        """Export frames (PNG + sidecar); reports what was written and what was refused."""
        info = self._model_info()
        if self.state.sweep is None or info is None or not frames:
            self.status_text.setText("Nothing to export yet.")
            return []
        folder = folder or self._export_dir()
        if folder is None:
            return []
        written, problems = [], []
        for frame in frames:
            measurement = self.measurement_of(frame)
            overlay = self.overlay_of(frame, measurement) if self.settings.export_overlay else None
            try:
                written += export_frame(self.state.sweep, frame, float(self.state.scores[frame]), info, folder,
                                        overlay=overlay, ac_mm=measurement.ac_mm if measurement else None)
            except ExportError as error:
                problems.append(str(error))
        message = f"Exported {len([p for p in written if p.suffix == '.png'])} frame(s) to {folder}."
        if problems:
            message += f" {len(problems)} not exported: {problems[0]}"
            self.alert("Export", message)
        self.status_text.setText(message)
        return written

    def export_current(self) -> None:
        self.export_frames([self.state.frame])

    def export_best(self) -> None:
        if self.state.sweep is None:
            return
        picks = [best_frame(self.state.scores, self.state.sweep.layout, slot) for slot in self.state.sweep.layout.slots]
        self.export_frames([p.frame for p in picks if p is not None])

    def export_good(self) -> None:
        scores = np.nan_to_num(self.state.scores, nan=-1)
        self.export_frames([int(f) for f in np.flatnonzero(scores >= self.state.threshold)])

    def export_csv(self) -> None:
        if self.state.sweep is None:
            return
        default = str(Path(self.settings.export_dir or Path.home()) / f"{frame_basename(self.state.sweep, 0).split('_frame')[0]}_scores.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export scores", default, "CSV (*.csv)")
        if not path:
            return
        areas = None if self.state.masks is None else self.state.masks.reshape(len(self.state.masks), -1).sum(axis=1)
        try:
            write_scores_csv(path, self.state.sweep, self.state.scores, self.state.threshold, areas, overwrite=True)
            self.status_text.setText(f"Scores written to {path}.")
        except ExportError as error:
            self.alert("Export", str(error))

    def alert(self, title: str, message: str) -> None:
        """A warning that does not block the window (and so never freezes scoring or tests)."""
        self.last_alert = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- settings, help, banner -------------------------------------------------------------

    def _sync_threshold_box(self, value: float) -> None:
        self.threshold_box.blockSignals(True)
        self.threshold_box.setValue(value)
        self.threshold_box.blockSignals(False)

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.settings = dialog.result_settings()
            stored.save_settings(self.settings)
            self.demo_mode = False
            self._update_banner()
            self.start_scoring()  # a new model or device rescores (the cache permitting)

    def _update_banner(self) -> None:
        notes = []
        model = self.state.model
        if model is not None and model.is_demo:
            notes.append(f"⚠ {DEMO_LABEL}.")
        if not real_weights_configured() and not self.settings.weights:
            notes.append(f"No FetalCLIP weights are configured: put FetalCLIP_weights.pt in {MODEL_WEIGHTS_DIR} "
                         "or choose it in File > Settings, with a trained adapter.")
        self.banner.setText(" ".join(notes))
        self.banner.setVisible(bool(notes))

    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(SHORTCUTS), 2, dialog)
        table.setHorizontalHeaderLabels(["Key", "Action"])
        for row, shortcut in enumerate(SHORTCUTS):
            table.setItem(row, 0, QTableWidgetItem(", ".join(shortcut.keys)))
            table.setItem(row, 1, QTableWidgetItem(shortcut.description))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        dialog.resize(420, 480)
        dialog.exec()

    def show_about(self) -> None:
        from .. import __version__
        QMessageBox.about(self, "About fetal-iqa",
                          f"fetal-iqa {__version__}\nImage-quality assessment of fetal ultrasound blind sweeps "
                          "with FetalCLIP_CLS (He, Wang, Yaqub, 2025).\nNot a medical device.")

    def closeEvent(self, event) -> None:
        self.play_timer.stop()
        self.cancel_scoring(wait=True)
        if self.loader is not None:
            self.loader.wait()
        stored.save_window_geometry(self.saveGeometry())
        super().closeEvent(event)
