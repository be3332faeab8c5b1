"""The quality timeline: scores of every frame, threshold, good runs, sweeps, padding, current frame."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .state import ViewerState

SCORE_COLOUR = "#4aa3ff"
SCORE_PEN = pg.mkPen(SCORE_COLOUR, width=1.5)
PENDING_BRUSH = pg.mkBrush(150, 150, 150, 160)
GOOD_BRUSH = pg.mkBrush(46, 204, 113, 60)
PADDING_BRUSH = pg.mkBrush(120, 120, 120, 50)
THRESHOLD_PEN = pg.mkPen("#e67e22", width=2, style=Qt.PenStyle.DashLine)
CURRENT_PEN = pg.mkPen("#ff4d4d", width=2)
SWEEP_PEN = pg.mkPen("#888888", width=1, style=Qt.PenStyle.DotLine)
EMPTY_FRAMES = 140  # the x range shown before a sweep is open


_HOW_TO = "Click or drag to go to a frame; drag the dashed line to set the threshold."


def _band(start: float, stop: float, brush, z: float) -> pg.LinearRegionItem:
    """A shaded, fixed span of frames without edge lines."""
    region = pg.LinearRegionItem((start, stop), movable=False, brush=brush, pen=pg.mkPen(None))
    for line in region.lines:
        line.setPen(pg.mkPen(None))
    region.setZValue(z)
    return region


class ScrubViewBox(pg.ViewBox):
    """Click or drag anywhere (but on the threshold line) to go to that frame."""

    def __init__(self, state: ViewerState):
        super().__init__(enableMenu=False)
        self.viewer = state  # not `state`: ViewBox keeps its own under that name
        self.setMouseEnabled(x=False, y=False)

    def _go(self, event) -> None:
        self.viewer.set_frame(int(round(self.mapSceneToView(event.scenePos()).x())))

    def mouseClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            self._go(event)

    def mouseDragEvent(self, event, axis=None) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            self._go(event)


class TimelineWidget(pg.PlotWidget):
    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent, viewBox=ScrubViewBox(state))
        self.state = state
        self.setAccessibleName("Quality timeline")
        self.setToolTip(f"Frame scores. {_HOW_TO}")
        self.setMinimumHeight(140)
        self.hideButtons()
        self.setLabel("left", "score")
        self.setLabel("bottom", "frame")
        self.getAxis("bottom").enableAutoSIPrefix(False)  # frame numbers, never "x0.001"
        self.getAxis("left").enableAutoSIPrefix(False)  # a SEG model's areas (0.06) as they are, not "60 m"
        self.top = 1.0  # of the scores' axis: 1 for a CLS probability, fitted to a SEG model's areas
        self.setYRange(0, self.top * 1.08, padding=0)
        self.setXRange(0, EMPTY_FRAMES, padding=0)
        self.curve = self.plot([], [], pen=SCORE_PEN, connect="finite")
        # dots too: while scoring is coarse, scored frames have no scored neighbours to join
        self.scored = pg.ScatterPlotItem(size=4, brush=pg.mkBrush(SCORE_COLOUR), pen=None)
        self.addItem(self.scored)
        self.pending = pg.ScatterPlotItem(size=4, brush=PENDING_BRUSH, pen=None)
        self.addItem(self.pending)
        self.threshold_line = pg.InfiniteLine(
            angle=0, movable=True, pen=THRESHOLD_PEN, bounds=(0, 1), label="threshold {value:.3f}",
            # the label sits above the line, and below it in the axis's upper half: never clipped at the
            # top; on a dark ground, to be read over the scores' curve
            labelOpts={"position": 0.99, "anchors": [(1, 0), (1, 1)], "color": "#e67e22", "fill": (0, 0, 0, 170)})
        self.threshold_line.sigPositionChanged.connect(lambda line: state.set_threshold(line.value()))
        self.addItem(self.threshold_line)
        self.threshold_line.hide()  # shown once a model's threshold is known
        self.current_line = pg.InfiniteLine(angle=90, movable=False, pen=CURRENT_PEN)
        self.addItem(self.current_line)
        self.current_line.hide()
        self.decorations: list = []
        self.runs: dict[tuple[int, int], pg.LinearRegionItem] = {}
        state.case_changed.connect(self._on_case)
        state.scores_changed.connect(self._on_scores)
        state.threshold_changed.connect(self._on_threshold)
        state.model_changed.connect(self._on_model)
        state.frame_changed.connect(self.current_line.setValue)

    def _on_case(self) -> None:
        for item in self.decorations:
            self.removeItem(item)
        self.decorations = []
        layout = self.state.open_case.layout
        for start, stop in layout.padding_runs():  # a band per run: never over image frames
            self.decorations.append(_band(start - 0.5, stop - 0.5, PADDING_BRUSH, -20))
        for sweep in layout.sweeps:
            if sweep.start > 0:
                self.decorations.append(pg.InfiniteLine(sweep.start - 0.5, angle=90, pen=SWEEP_PEN))
            label = pg.TextItem(f"sweep {sweep.number}", color="#999999", anchor=(0, 0))
            label.setPos(sweep.start + 1, self.top * 1.08)
            self.decorations.append(label)
        for item in self.decorations:
            self.addItem(item)
        self.setXRange(-0.5, layout.n_frames - 0.5, padding=0.01)
        self.current_line.setValue(self.state.frame)
        self._on_threshold(self.state.threshold)
        self._on_model()
        self.current_line.show()

    def _on_scores(self, frames) -> None:
        if self.state.case is None:
            return
        scores = self.state.scores  # setData takes whole arrays; at a few thousand points that is cheap
        padding = self.state.case.layout.padding
        self.curve.setData(np.arange(len(scores)), np.where(padding, np.nan, scores).astype(float))
        scored = np.flatnonzero(~np.isnan(scores) & ~padding)
        self.scored.setData(scored, scores[scored])
        pending = np.flatnonzero(np.isnan(scores) & ~padding)
        self.pending.setData(pending, np.zeros(len(pending)))
        self._fit_axis()
        self._shade_runs()

    def _on_model(self) -> None:
        self.threshold_line.setVisible(self.state.model is not None)  # until then its threshold is not known
        self.threshold_line.label.valueChanged()  # pyqtgraph skips a hidden line's label: it would still say 0
        self._fit_axis()

    def _fit_axis(self) -> None:
        """A SEG model's score is the abdomen's share of the frame (good from 1 %, rarely above 10 %):
        on a 0-1 axis its curve would lie flat, so the axis ends a little above the largest area
        (at least three thresholds up, room to drag the threshold)."""
        model = self.state.model
        if model is not None and model.is_segmentation:
            scores = self.state.scores
            largest = float(np.nanmax(scores)) if np.isfinite(scores).any() else 0.0
            top = min(1.0, max(3 * self.state.threshold, 1.15 * largest))
            if top <= self.top and self.top <= 1.5 * top:  # grows with the scores, not at every batch
                return
            label, what = "area", "The abdomen's area as a share of the frame"  # the axis has room for a word
        else:
            top, label, what = 1.0, "score", "Frame scores"
        self.top = top
        self.setLabel("left", label)
        self.setToolTip(f"{what}. {_HOW_TO}")
        self.setYRange(0, top * 1.08, padding=0)
        for item in self.decorations:
            if isinstance(item, pg.TextItem):
                item.setPos(item.pos().x(), top * 1.08)

    def _on_threshold(self, value: float) -> None:
        self.threshold_line.setValue(value)  # its echo to the state is the same value: no loop
        self._shade_runs()

    def _shade_runs(self) -> None:
        """Add and remove only the runs of good frames that changed."""
        runs = set(self.state.scored.good_runs()) if self.state.scored else set()
        for run in set(self.runs) - runs:
            self.removeItem(self.runs.pop(run))
        for start, stop in runs - set(self.runs):
            self.runs[(start, stop)] = _band(start - 0.5, stop - 0.5, GOOD_BRUSH, -10)
            self.addItem(self.runs[(start, stop)])
