"""The frame view: the current frame at native aspect, with its overlay and the SEG mask outline."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal

from ..preprocess import unsquare_mask
from .state import ViewerState

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

GOOD_COLOUR = "#2ecc71"
POOR_COLOUR = "#e67e22"
MASK_COLOUR = (0, 255, 255)
ELLIPSE_COLOUR = "#ffd000"


EMPTY_HINT = ("No sweep is open.\n\nFile > Open (Ctrl+O), or drop a file here.\n"
              "File > Open the demo sweep to see the app on synthetic data.")


class FrameView(pg.GraphicsLayoutWidget):
    """Shows `state.frame`; wheel steps frames, drag pans, right-drag zooms. Levels are fixed."""

    step_requested = Signal(int)

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.setAccessibleName("Frame view")
        self.setToolTip("The current frame. Wheel: step frames; drag: pan; Ctrl+wheel: zoom; F: fit")
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(levels=(0, 255))
        self.image.setAutoDownsample(False)
        self.view.addItem(self.image)
        self.mask_outline = pg.ImageItem()
        self.mask_outline.setCompositionMode(pg.QtGui.QPainter.CompositionMode.CompositionMode_Plus)
        self.view.addItem(self.mask_outline)
        self.caption = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(0, 0, 0, 160))
        self.caption.setZValue(10)
        self.caption.hide()  # until there is a frame to describe
        self.view.addItem(self.caption)
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
        self.show_mask = True
        self.levels = (0, 255)
        # latest request wins: many frame changes between repaints render once, the last one
        self._render_timer = QTimer(self, singleShot=True, interval=0)
        self._render_timer.timeout.connect(self.render)
        state.sweep_changed.connect(self._on_sweep)
        state.frame_changed.connect(lambda _: self._render_timer.start())
        state.scores_changed.connect(self._render_timer.start)
        state.threshold_changed.connect(lambda _: self._render_timer.start())

    def _on_sweep(self) -> None:
        sweep = self.state.sweep
        self.empty_text.hide()
        self.caption.show()
        spacing_x, spacing_y = sweep.spacing_mm
        # square pixels on screen in mm: the image item is scaled by the spacing ratio
        self.image.setTransform(pg.QtGui.QTransform.fromScale(1.0, spacing_y / spacing_x))
        self.mask_outline.setTransform(self.image.transform())
        self.render()
        self.fit()

    def fit(self) -> None:
        self.view.autoRange(padding=0.02)

    def set_levels(self, low: float, high: float) -> None:
        self.levels = (low, high)
        self.image.setLevels(self.levels)

    def reset_levels(self) -> None:
        self.set_levels(0, 255)

    def show_ellipse(self, ellipse) -> None:
        """Draw the fitted AC ellipse (a `measure.Ellipse`), or hide it with None."""
        if ellipse is None or not self.show_mask:
            self.ellipse.hide()
            return
        (cx, cy), (ax, ay) = ellipse.center, ellipse.axes
        self.ellipse.setRect(-ax, -ay, 2 * ax, 2 * ay)
        self.ellipse.setPos(cx, cy)
        self.ellipse.setRotation(ellipse.angle_deg)
        self.ellipse.show()

    def toggle_mask(self) -> None:
        self.show_mask = not self.show_mask
        self.render()

    def render(self) -> None:
        sweep = self.state.sweep
        if sweep is None:
            return
        frame = self.state.frame
        padding = bool(sweep.layout.padding[frame])
        slot = sweep.layout.sweep_of(frame)
        if padding:
            self.image.setImage(np.full(sweep.frames.shape[1:], 40, np.uint8), levels=(0, 255))
            width, height = sweep.frame_size
            self.padding_text.setPos(width / 2, height / 2)
        else:
            self.image.setImage(sweep.frames[frame], levels=self.levels, autoLevels=False)
        self.padding_text.setVisible(padding)
        self._render_mask(frame, padding)
        text = f"Frame {frame}  |  sweep {slot.number}, frame {frame - slot.start} of {len(slot)}"
        score = self.state.score
        if padding:
            text += "\nPadding (no image, not scored)"
            colour = "#bbbbbb"
        elif math.isnan(score):
            text += "\nScore: pending"
            colour = "#dddddd"
        else:
            good = score >= self.state.threshold
            text += f"\nScore {score:.3f}: {'GOOD' if good else 'not good'} (threshold {self.state.threshold:.3f})"
            colour = GOOD_COLOUR if good else POOR_COLOUR
        self.caption.setText(text, color=colour)

    def _render_mask(self, frame: int, padding: bool) -> None:
        masks = self.state.masks
        if not self.show_mask or padding or masks is None or math.isnan(self.state.score) or not masks[frame].any():
            self.mask_outline.setVisible(False)
            return
        import cv2
        mask = unsquare_mask(masks[frame], self.state.sweep.frames.shape[1:])
        outline = mask - cv2.erode(mask, np.ones((5, 5), np.uint8))
        rgba = np.zeros(mask.shape + (4,), np.uint8)
        rgba[outline > 0] = MASK_COLOUR + (255,)
        self.mask_outline.setImage(rgba, levels=(0, 255))
        self.mask_outline.setVisible(True)

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)  # zoom
            return
        steps = event.angleDelta().y() // 120 or (1 if event.angleDelta().y() > 0 else -1)
        self.step_requested.emit(-int(steps))
        event.accept()
