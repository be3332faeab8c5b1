"""The live view: the source's newest frame, the quality strip of the scores, a cue at the threshold,
the current sweep's best frames; S marks the next sweep, Esc stops. On stop the recording opens as a case.

H toggles the heat map (engine/explain.py) of the latest scored frame over the picture. It is computed
only while it is on, one map at a time on its own thread (latest scored frame wins, never a queue),
so scoring and the display do not wait for it; off, nothing is computed."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from .live_thread import LiveThread
from .thumbnail_strip import thumbnail

if TYPE_CHECKING:
    from ..live.session import LiveScore

STRIP_FRAMES = 300  # the quality strip shows the last 10 s at 30 frames/s
GOOD_STYLE = "background: #1b5e20; color: white; font-weight: bold; padding: 4px;"
WAIT_STYLE = "background: #424242; color: white; padding: 4px;"
log = logging.getLogger(__name__)


class LiveView(QWidget):
    recorded = Signal(object)  # the recording's Path, when the session ends with one
    heat_map_ready = Signal(int, object)  # the frame, its HeatMap (from the heat map's thread)

    def __init__(self, thread: LiveThread, title: str, parent=None, warning: str = "",
                 make_explainer: Callable[[], object] | None = None):
        """`make_explainer()`: the heat maps' explainer (engine/explain.py), made on first use, off this thread."""
        super().__init__(parent, Qt.WindowType.Window)
        self.worker = thread  # not `thread`: QObject.thread() is Qt's
        self.make_explainer = make_explainer
        self.explainer: Any = None  # engine/explain.py's Explainer, made on first use
        self.heat_visible, self.heat_frame = False, cast(int | None, None)  # on; the frame of the map shown
        self._heat_busy = False  # a map is being computed
        self._heat_next: tuple[int, Any] | None = None  # the scored frame (and its image) to do next
        self.setWindowTitle(f"Live: {title} - fetal-iqa")
        self.warning = QLabel(f"⚠ {warning}")  # a demo model says so here too: this window stands alone
        self.warning.setStyleSheet("background: #7a5200; color: white; padding: 4px;")
        self.warning.setVisible(bool(warning))
        self.image = pg.ImageItem(axisOrder="row-major")
        frame_view = pg.GraphicsLayoutWidget()
        box = frame_view.addViewBox(lockAspect=True, invertY=True)
        box.addItem(self.image)
        self.heat_image = pg.ImageItem(axisOrder="row-major")  # RGBA over the frame, hidden until H
        self.heat_image.setVisible(False)
        box.addItem(self.heat_image)
        self.strip = pg.PlotWidget()
        self.strip.setYRange(0, 1)
        self.strip.setMinimumHeight(150)
        self.strip.setMaximumHeight(190)
        self.strip.setLabel("left", "score")
        self.strip.setLabel("bottom", "frame")
        self.strip.getAxis("left").setTicks([[(0, "0"), (0.5, "0.5"), (1, "1")]])  # legible at this height
        self.threshold_line = pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen("#66bb6a", style=Qt.PenStyle.DashLine))
        self.strip.addItem(self.threshold_line)  # at the model's threshold once its first score comes
        self.curve = self.strip.plot([], [], pen=None, symbol="o", symbolSize=5, symbolBrush="#90caf9")
        self.cue = QLabel("Waiting for a frame at the threshold…")
        self.cue.setStyleSheet(WAIT_STYLE)
        self.best = QListWidget()
        self.best.setViewMode(QListView.ViewMode.IconMode)
        self.best.setFlow(QListView.Flow.LeftToRight)
        self.best.setMaximumHeight(140)
        self.best.setToolTip("The best frames of the current sweep so far")
        mark, stop = QPushButton("Mark next sweep (S)"), QPushButton("Stop (Esc)")
        mark.clicked.connect(self.mark_sweep)
        stop.clicked.connect(self.stop)
        QShortcut(QKeySequence("S"), self, self.mark_sweep)
        QShortcut(QKeySequence("Esc"), self, self.stop)
        QShortcut(QKeySequence("H"), self, self.toggle_heat_map)
        self.heat_map_ready.connect(self._show_heat_map)
        self.status = QLabel("")
        buttons = QHBoxLayout()
        for widget in (self.status, mark, stop):
            buttons.addWidget(widget)
        layout = QVBoxLayout(self)
        for part in (self.warning, self.cue, frame_view, self.strip, self.best):
            layout.addWidget(part)
        layout.addLayout(buttons)
        self.frames: list[int] = []
        self.scores: list[float] = []
        self.was_good = False
        thread.frame_ready.connect(self.show_newest)
        thread.scored.connect(self.add_score)
        thread.ended.connect(self.on_ended)
        thread.failed.connect(lambda message: self.status.setText(message))

    def show_newest(self) -> None:
        frame = self.worker.newest()
        if frame is not None:  # None: shown already by an earlier signal
            self.image.setImage(frame, levels=(0, 255), autoLevels=False)

    def add_score(self, result: LiveScore) -> None:
        session = self.worker.session
        assert session is not None  # the session scores
        if not self.frames:
            self.threshold_line.setValue(session.threshold)
        self.frames.append(result.frame)
        self.scores.append(result.score)
        self.curve.setData(self.frames[-STRIP_FRAMES:], self.scores[-STRIP_FRAMES:])
        if result.good:
            self.cue.setText(f"GOOD: frame {result.frame} ({result.score:.2f})")
            self.cue.setStyleSheet(GOOD_STYLE)
            if not self.was_good:
                QApplication.beep()
        else:
            self.cue.setStyleSheet(WAIT_STYLE)
            self.cue.setText(self.cue.text().replace("GOOD:", "Last good:"))
        self.was_good = result.good
        if self.heat_visible and result.image is not None:
            self._ask_heat_map(result.frame, result.image)
        self._show_best(session.best_frames(), session.threshold)

    def _show_best(self, best, threshold: float) -> None:
        self.best.clear()
        for score, frame, image in best:
            mark = "✔" if score >= threshold else ""
            self.best.addItem(QListWidgetItem(thumbnail(image), f"{mark} {frame}: {score:.2f}"))

    def toggle_heat_map(self) -> None:
        if self.make_explainer is None:
            self.status.setText("No heat map: this session's model has none.")
            return
        self.heat_visible = not self.heat_visible
        self.heat_image.setVisible(False)
        self.heat_frame = None
        if not self.heat_visible:
            self._heat_next = None
            self.status.setText("Heat map off.")
            return
        self.status.setText("Heat map on: computing on the next scored frame… H hides it.")
        scores = self.worker.session.scores if self.worker.session is not None else []
        if scores and scores[-1].image is not None:
            self._ask_heat_map(scores[-1].frame, scores[-1].image)

    def _ask_heat_map(self, frame: int, image) -> None:
        if self._heat_busy:
            self._heat_next = (frame, image)  # the latest wins: any older request is dropped
            return
        self._heat_busy = True
        threading.Thread(target=self._compute_heat_map, args=(frame, image), daemon=True,
                         name="live heat map").start()

    def _compute_heat_map(self, frame: int, image) -> None:
        try:
            if self.explainer is None:
                assert self.make_explainer is not None  # H shows nothing without one
                self.explainer = self.make_explainer()
            heat = self.explainer.heat_map("live", frame, image)
            heat.colours  # noqa: B018 (made here, not on the GUI thread)
        except Exception as error:  # said in the status line; the live session goes on
            log.exception("the live heat map failed")
            heat = f"No heat map: {error}"
        self.heat_map_ready.emit(frame, heat)

    def _show_heat_map(self, frame: int, heat) -> None:
        self._heat_busy = False
        if isinstance(heat, str):
            self.heat_visible, self._heat_next = False, None
            self.status.setText(heat)
            return
        if self.heat_visible:
            self.heat_image.setImage(heat.colours, levels=(0, 255), autoLevels=False)
            self.heat_image.setVisible(True)
            self.heat_frame = frame
            self.status.setText(f"Heat map of frame {frame}, {heat.description} "
                                "(an explanation aid, not a measurement). H hides it.")
        if self._heat_next is not None and self.heat_visible:
            (next_frame, image), self._heat_next = self._heat_next, None
            self._ask_heat_map(next_frame, image)

    def mark_sweep(self) -> None:
        self.worker.mark_sweep()
        self.best.clear()
        self.status.setText("Next sweep marked")

    def stop(self) -> None:
        self.worker.requestInterruption()

    def on_ended(self, summary) -> None:
        self.status.setText(f"{summary.frames} frames, {summary.scored_fraction:.0%} scored. Ended: {summary.ended}."
                            + (" The source stopped: what came is recorded." if summary.unplugged else ""))
        if summary.recording is not None:
            self.recorded.emit(Path(summary.recording))

    def closeEvent(self, event) -> None:
        self.stop()
        self.worker.wait(5000)
        super().closeEvent(event)
