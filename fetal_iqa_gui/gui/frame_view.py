"""The frame view: the current frame at native aspect, its SEG mask outline and AC ellipse, the
heat map when asked (H), and a readout fixed in the corner (it stays put when the image is zoomed
or panned)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel

from .state import ViewerState

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

FULL_LEVELS = (0, 255)  # uint8 frames: the whole range, window 255 at level 128 (the display's default)
PADDING_GREY = 40
GOOD_COLOUR = "#2ecc71"
POOR_COLOUR = "#f0a030"
UNKNOWN_SPACING_COLOUR = "#ff8080"
SPACING_COLOUR = "#c8c8c8"
MASK_COLOUR = (0, 255, 255)
ELLIPSE_COLOUR = "#ffd000"
LEVELS_PER_PIXEL = 0.5  # right-drag: grey levels per pixel moved

EMPTY_HINT = ("No sweep is open.\n\nFile > Open (Ctrl+O), or drop a file here.\n"
              "File > Open the demo sweep to see the app on synthetic data.")


class LevelsViewBox(pg.ViewBox):
    """Left-drag pans; right-drag sets window (horizontal) and level (vertical), as ITK-SNAP and Slicer do."""

    def __init__(self, on_levels_drag, image: pg.ImageItem, **options):
        super().__init__(**options)
        self.on_levels_drag = on_levels_drag
        self.image = image
        # a caliper being placed: placing(start, end, done) in image pixels, instead of a pan
        self.placing: Callable[[QPointF, QPointF, bool], None] | None = None

    def mouseDragEvent(self, event, axis=None) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.placing is not None:
            event.accept()
            self.placing(self.image.mapFromScene(event.buttonDownScenePos()), self.image.mapFromScene(event.scenePos()),
                         event.isFinish())
            return
        if event.button() != Qt.MouseButton.RightButton:
            super().mouseDragEvent(event, axis)
            return
        event.accept()
        delta = event.screenPos() - event.lastScreenPos()
        self.on_levels_drag(delta.x() * LEVELS_PER_PIXEL, -delta.y() * LEVELS_PER_PIXEL)


class FrameView(pg.GraphicsLayoutWidget):
    """Shows `state.frame`; wheel steps frames, drag pans, Ctrl+wheel zooms, right-drag sets levels."""

    step_requested = Signal(int)
    levels_dragged = Signal(float, float)  # window and level change, in grey levels

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.setAccessibleName("Frame view")
        self.setToolTip("The current frame. Wheel: step frames; drag: pan; Ctrl+wheel: zoom; "
                        "right-drag: window/level; F: fit")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.image = pg.ImageItem(levels=FULL_LEVELS)
        self.view = LevelsViewBox(self.levels_dragged.emit, self.image, lockAspect=True, invertY=True, enableMenu=False)
        self.addItem(self.view)
        self.image.setAutoDownsample(False)
        self.view.addItem(self.image)
        self.mask_outline = pg.ImageItem()
        self.mask_outline.setCompositionMode(pg.QtGui.QPainter.CompositionMode.CompositionMode_Plus)
        self.view.addItem(self.mask_outline)
        self.padding_text = pg.TextItem("Padding frame: not an image", anchor=(0.5, 0.5), color="#bbbbbb")
        self.padding_text.hide()
        self.view.addItem(self.padding_text)
        self.empty_text = pg.TextItem(EMPTY_HINT, anchor=(0.5, 0.5), color="#bbbbbb")
        self.view.addItem(self.empty_text)
        self.view.setRange(xRange=(-1, 1), yRange=(-1, 1))
        # the fitted AC ellipse, in image pixels: a child of the image, so it shares its spacing transform
        self.ellipse = pg.QtWidgets.QGraphicsEllipseItem()
        self.ellipse.setPen(pg.mkPen(ELLIPSE_COLOUR, width=2))
        self.ellipse.setParentItem(self.image)
        self.ellipse.hide()
        # the heat map, in image pixels too; below the ellipse and the calipers (later children of the image)
        self.heat_map = pg.ImageItem()
        self.heat_map.setParentItem(self.image)
        self.heat_map.setZValue(-1)
        self.heat_map.hide()
        self.heat_note: str | None = None  # what the readout says of the heat map; None: it is off
        self.readout = QLabel(self)
        self.readout.setAccessibleName("Frame readout")
        self.readout.setStyleSheet("QLabel { background: rgba(0, 0, 0, 170); padding: 4px 8px; font-size: 13px; }")
        self.readout.move(8, 8)
        self.readout.hide()  # until there is a frame to describe
        self.show_mask = True
        self.levels: tuple[float, float] = FULL_LEVELS
        # latest request wins: many frame changes between repaints draw once, the last one
        self._redraw_timer = QTimer(self, singleShot=True, interval=0)
        self._redraw_timer.timeout.connect(self.redraw)
        state.case_changed.connect(self._on_case)
        state.frame_changed.connect(lambda _: self._redraw_timer.start())
        state.scores_changed.connect(self._on_scores)
        state.threshold_changed.connect(lambda _: self._redraw_timer.start())
        state.spacing_changed.connect(self._on_spacing)

    def _on_case(self) -> None:
        self.empty_text.hide()
        self.readout.show()
        self._on_spacing()
        self.fit()

    def _on_spacing(self) -> None:
        spacing_x, spacing_y = self.state.open_case.spacing_mm or (1.0, 1.0)
        # square pixels on screen in mm: the image item is scaled by the spacing ratio
        self.image.setTransform(pg.QtGui.QTransform.fromScale(1.0, spacing_y / spacing_x))
        self.mask_outline.setTransform(self.image.transform())
        self.redraw()

    def _on_scores(self, frames) -> None:
        if frames is None or self.state.frame in frames:
            self._redraw_timer.start()

    def fit(self) -> None:
        self.view.autoRange(padding=0.02)

    def set_levels(self, low: float, high: float) -> None:
        self.levels = (low, high)
        self.image.setLevels(self.levels)

    def _show_ellipse(self, frame: int) -> None:
        """The AC ellipse fitted to the frame's mask (SEG models), if there is one."""
        measurement = self.state.open_scored.measurement_of(frame) if self.show_mask else None
        if measurement is None:
            self.ellipse.hide()
            return
        ellipse = measurement.ellipse
        (cx, cy), (ax, ay) = ellipse.center, ellipse.axes
        self.ellipse.setRect(-ax, -ay, 2 * ax, 2 * ay)
        self.ellipse.setPos(cx, cy)
        self.ellipse.setRotation(ellipse.angle_deg)
        self.ellipse.show()

    def show_heat_map(self, colours: np.ndarray | None, note: str | None) -> None:
        """The heat map's RGBA overlay in the frame's pixels (None: none shown), and the readout's
        word on it (None: the heat map is off)."""
        if colours is None:
            self.heat_map.hide()
        else:
            self.heat_map.setImage(colours, autoLevels=False, levels=FULL_LEVELS)
            self.heat_map.show()
        if note != self.heat_note:
            self.heat_note = note
            if self.state.case is not None:
                self._describe(self.state.frame, bool(self.state.case.layout.padding[self.state.frame]))

    def toggle_mask(self) -> None:
        self.show_mask = not self.show_mask
        self.redraw()

    def redraw(self) -> None:
        case = self.state.case
        if case is None:
            return
        frame = self.state.frame
        padding = bool(case.layout.padding[frame])
        if padding:
            self.image.setImage(np.full(case.frames.shape[1:], PADDING_GREY, np.uint8), levels=FULL_LEVELS)
            width, height = case.frame_size
            self.padding_text.setPos(width / 2, height / 2)
        else:
            self.image.setImage(case.frames[frame], levels=self.levels, autoLevels=False)
        self.padding_text.setVisible(padding)
        self._redraw_mask(frame, padding)
        self._show_ellipse(frame)
        self._describe(frame, padding)

    def _describe(self, frame: int, padding: bool) -> None:
        case = self.state.open_case
        sweep = case.layout.sweep_of(frame)
        # frame numbers count from 0, as on the timeline and in every export; the ranges say so
        text = (f"Frame {frame} [0–{case.n_frames - 1}] · sweep {sweep.number} of {len(case.layout.sweeps)}, "
                f"frame {frame - sweep.start} [0–{len(sweep) - 1}] in the sweep")
        score = self.state.score
        if padding:
            text += "<br>Padding (no image, not scored)"
            colour = "#bbbbbb"
        elif math.isnan(score):
            text += "<br>Score: pending"
            colour = "#dddddd"
        else:
            good = self.state.open_scored.is_good(frame)  # the core's rule, as every export says it
            verdict = "✔ GOOD" if good else "✘ not good"
            text += f"<br><b>{verdict}</b>: score {score:.3f} (threshold {self.state.threshold:.3f})"
            colour = GOOD_COLOUR if good else POOR_COLOUR
        spacing = case.spacing
        # what every mm on screen rests on, and where it came from
        line = (f"Spacing {spacing.mm[0]:.3f} × {spacing.mm[1]:.3f} mm ({spacing.source})" if spacing.mm else
                f"<span style='color:{UNKNOWN_SPACING_COLOUR}'>Spacing unknown: no measurement in mm "
                f"(Measure &gt; Set pixel spacing)</span>")
        if spacing.note:
            line += " ⚠ (hover for more)"
        if self.heat_note:
            line += f"<br>Heat map: {self.heat_note}"
        self.readout.setToolTip(spacing.describe())
        self.readout.setText(f"<span style='color:{colour}'>{text}</span><br>"
                             f"<span style='color:{SPACING_COLOUR}; font-size: 12px'>{line}</span>")
        self.readout.adjustSize()

    def _redraw_mask(self, frame: int, padding: bool) -> None:
        masks = self.state.masks
        if not self.show_mask or padding or masks is None or math.isnan(self.state.score) or not masks[frame].any():
            self.mask_outline.setVisible(False)
            return
        import cv2
        mask = self.state.open_scored.mask_of(frame)
        assert mask is not None  # the frame is scored and its mask is not empty (above)
        outline = mask - cv2.erode(mask, np.ones((5, 5), np.uint8))
        rgba = np.zeros(mask.shape + (4,), np.uint8)
        rgba[outline > 0] = MASK_COLOUR + (255,)
        self.mask_outline.setImage(rgba, levels=FULL_LEVELS)
        self.mask_outline.setVisible(True)

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)  # zoom
            return
        steps = event.angleDelta().y() // 120 or (1 if event.angleDelta().y() > 0 else -1)
        self.step_requested.emit(-int(steps))
        event.accept()
