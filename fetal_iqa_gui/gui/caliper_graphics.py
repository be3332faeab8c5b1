"""How calipers look on the frame. A kept caliper is drawn locked: plain lines that no drag can
move, with its label and value beside it. The caliper being placed or edited is a pyqtgraph ROI
with handles, its value shown live beside it. Everything is a child of the image item, in the
frame's pixels, so it shares the image's spacing transform."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QAbstractGraphicsShapeItem, QGraphicsEllipseItem, QGraphicsPathItem

from ..case.measure import Ellipse
from ..review.calipers import DistanceCaliper, EllipseCaliper, same_shape

KEPT_COLOUR = "#ffd000"
SELECTED_COLOUR = "#4fc3ff"
EDIT_COLOUR = "#ff66ff"
EDIT_HOVER_COLOUR = "#ffb3ff"  # pyqtgraph's own hover colour is the kept calipers' yellow
TEXT_FILL = pg.mkBrush(0, 0, 0, 170)  # text stays legible over bright tissue
END_TICK_PX = 6  # half the length of the cross at each end of a distance


_EDIT_PENS = {"pen": pg.mkPen(EDIT_COLOUR, width=2), "hoverPen": pg.mkPen(EDIT_HOVER_COLOUR, width=3),
              "handlePen": pg.mkPen(EDIT_COLOUR), "handleHoverPen": pg.mkPen(EDIT_HOVER_COLOUR)}


def ellipse_of(roi: pg.EllipseROI) -> Ellipse:
    """The ROI's ellipse in the frame's pixels."""
    width, height = roi.size()
    centre = roi.mapToParent(QPointF(width / 2, height / 2))
    return Ellipse((centre.x(), centre.y()), (abs(width) / 2, abs(height) / 2), roi.angle())


def place_ellipse(roi: pg.EllipseROI, ellipse: Ellipse) -> None:
    (cx, cy), (a, b), angle = ellipse.center, ellipse.axes, ellipse.angle_deg
    theta = math.radians(angle)
    corner = (cx - (a * math.cos(theta) - b * math.sin(theta)), cy - (a * math.sin(theta) + b * math.cos(theta)))
    roi.setState({"pos": corner, "size": (2 * a, 2 * b), "angle": angle})


def editable_ellipse(ellipse: Ellipse, image: pg.ImageItem) -> pg.EllipseROI:
    roi = pg.EllipseROI((0, 0), (1, 1), parent=image, **_EDIT_PENS)
    roi.addScaleHandle([0, 0.5], [0.5, 0.5])  # one axis at a time, as an ultrasound machine's calipers
    roi.addScaleHandle([0.5, 1], [0.5, 0.5])
    place_ellipse(roi, ellipse)
    return roi


def editable_line(start: tuple[float, float], end: tuple[float, float], image: pg.ImageItem) -> pg.LineSegmentROI:
    return pg.LineSegmentROI([start, end], parent=image, **_EDIT_PENS)


def caliper_of(roi: pg.ROI, spacing_mm: tuple[float, float], original=None):
    """The measurement the ROI shows. An ellipse left as the model placed it stays the model's;
    adjusted, it is the user's, and keeps the model's AC for comparison."""
    if isinstance(roi, pg.EllipseROI):
        model_ac = original.model_ac_mm if isinstance(original, EllipseCaliper) else None
        caliper = EllipseCaliper(ellipse_of(roi), spacing_mm, "user", model_ac)
        if isinstance(original, EllipseCaliper) and original.by == "model" and same_shape(caliper, original):
            return original
        return caliper
    start, end = (roi.mapToParent(handle.pos()) for handle in roi.getHandles())
    return DistanceCaliper((start.x(), start.y()), (end.x(), end.y()), spacing_mm)


def live_text(caliper) -> str:
    if isinstance(caliper, EllipseCaliper):
        major, minor = caliper.diameters_mm
        text = f"AC {caliper.ac_mm:.1f} mm\naxes {major:.1f} × {minor:.1f} mm"
        return f"{text}\n⚠ implausible: check the spacing" if caliper.warning else text
    return f"{caliper.length_mm:.1f} mm"


def text_item(image: pg.ImageItem, colour: str) -> pg.TextItem:
    item = pg.TextItem(color=colour, fill=TEXT_FILL, anchor=(0, 1))
    item.setParentItem(image)
    return item


def put_beside(text: pg.TextItem, caliper) -> None:
    """The text touches its own caliper, outside it: an ellipse's upper right, a distance's middle,
    so that nested calipers' labels are not taken for each other's."""
    if isinstance(caliper, EllipseCaliper):
        (cx, cy), (a, b) = caliper.ellipse.center, caliper.ellipse.axes
        theta = math.radians(caliper.ellipse.angle_deg)
        outline = [(cx + a * math.cos(t) * math.cos(theta) - b * math.sin(t) * math.sin(theta),
                    cy + a * math.cos(t) * math.sin(theta) + b * math.sin(t) * math.cos(theta))
                   for t in (k * math.pi / 36 for k in range(72))]
        x, y = max(outline, key=lambda point: point[0] - point[1])  # y runs down the image
    else:
        x, y = (caliper.start[0] + caliper.end[0]) / 2, (caliper.start[1] + caliper.end[1]) / 2
    text.setPos(x + 2, y - 2)


class LockedCaliper:
    """A kept caliper on the frame: its outline and its label, neither movable."""

    def __init__(self, caliper, label: str, image: pg.ImageItem):
        self.shape: QAbstractGraphicsShapeItem
        if isinstance(caliper, EllipseCaliper):
            (cx, cy), (a, b) = caliper.ellipse.center, caliper.ellipse.axes
            self.shape = QGraphicsEllipseItem(-a, -b, 2 * a, 2 * b)
            self.shape.setPos(cx, cy)
            self.shape.setRotation(caliper.ellipse.angle_deg)
            value = f"{caliper.ac_mm:.1f} mm" + (" ⚠ implausible" if caliper.warning else "")
        else:
            self.shape = QGraphicsPathItem(_distance_path(caliper.start, caliper.end))
            value = f"{caliper.length_mm:.1f} mm"
        self.shape.setParentItem(image)
        self.label = text_item(image, KEPT_COLOUR)
        self.label.setText(f"{label}: {value}")
        put_beside(self.label, caliper)
        self.set_selected(False)

    def set_selected(self, selected: bool) -> None:
        colour = SELECTED_COLOUR if selected else KEPT_COLOUR
        self.shape.setPen(pg.mkPen(colour, width=3 if selected else 2))
        self.label.setColor(colour)

    def set_visible(self, visible: bool) -> None:
        self.shape.setVisible(visible)
        self.label.setVisible(visible)

    def remove(self) -> None:
        for item in (self.shape, self.label):
            if item.scene() is not None:
                item.scene().removeItem(item)


def _distance_path(start: tuple[float, float], end: tuple[float, float]) -> QPainterPath:
    """The segment with a small cross at each end, where the caliper's points lie."""
    path = QPainterPath(QPointF(*start))
    path.lineTo(QPointF(*end))
    for x, y in (start, end):
        path.moveTo(x - END_TICK_PX, y)
        path.lineTo(x + END_TICK_PX, y)
        path.moveTo(x, y - END_TICK_PX)
        path.lineTo(x, y + END_TICK_PX)
    return path
