"""Calipers on the frame view: an ellipse for the AC and a distance, placed by click-drag (or, with
a segmentation model, starting from its mask's fitted ellipse), adjusted with their handles, and
kept with the frame when accepted. The geometry and the mm are the core's (`calipers.py`)."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Signal

from ..review.calipers import DistanceCaliper, EllipseCaliper, check_spacing
from ..case.measure import Ellipse, MeasurementError
from .frame_view import FrameView
from .state import ViewerState

CALIPER_PEN = pg.mkPen("#ffd000", width=2)
EDIT_PEN = pg.mkPen("#ff66ff", width=2)


def ellipse_of(roi: pg.EllipseROI) -> Ellipse:
    """The ROI's ellipse in the frame's pixels (the ROI is a child of the image item)."""
    width, height = roi.size()
    centre = roi.mapToParent(QPointF(width / 2, height / 2))
    return Ellipse((centre.x(), centre.y()), (abs(width) / 2, abs(height) / 2), roi.angle())


def place_ellipse(roi: pg.EllipseROI, ellipse: Ellipse) -> None:
    (cx, cy), (a, b), angle = ellipse.center, ellipse.axes, ellipse.angle_deg
    theta = math.radians(angle)
    corner = (cx - (a * math.cos(theta) - b * math.sin(theta)), cy - (a * math.sin(theta) + b * math.cos(theta)))
    roi.setState({"pos": corner, "size": (2 * a, 2 * b), "angle": angle})


class CaliperTool(QObject):
    status = Signal(str)
    alert = Signal(str, str)

    def __init__(self, state: ViewerState, view: FrameView, parent=None):
        super().__init__(parent)
        self.state, self.view = state, view
        self.rois: list[pg.ROI] = []
        self.proposal: tuple[Ellipse, float] | None = None  # the model's ellipse and AC, while unchanged
        state.frame_changed.connect(lambda _: self.show_kept())
        state.case_changed.connect(self.show_kept)
        state.calipers_changed.connect(lambda frame: frame == state.frame and self.show_kept())

    # -- the actions ---------------------------------------------------------------------------

    def start_ellipse(self) -> None:
        if not self._can_measure():
            return
        proposed = self.state.scored.measurement_of(self.state.frame) if self.state.scored else None
        width, height = self.state.case.frame_size
        roi = self._add(pg.EllipseROI((width * 0.35, height * 0.35), (width * 0.3, height * 0.3),
                                      pen=EDIT_PEN, parent=self.view.image))
        if proposed is not None:  # the segmentation model's ellipse, for the user to accept or adjust
            place_ellipse(roi, proposed.ellipse)
            self.proposal = (ellipse_of(roi), proposed.ac_mm)
            self.status.emit(f"The model's ellipse: AC {proposed.ac_mm:.1f} mm. Adjust it with the handles; "
                             "A keeps it with the frame.")
        else:
            self.view.view.placing = lambda start, end, done: self._drag_ellipse(roi, start, end, done)
            self.status.emit("Drag across the abdomen to place the ellipse; adjust it with the handles; "
                             "A keeps it with the frame.")

    def start_distance(self) -> None:
        if not self._can_measure():
            return
        width, height = self.state.case.frame_size
        roi = self._add(pg.LineSegmentROI([(width * 0.4, height / 2), (width * 0.6, height / 2)], pen=EDIT_PEN,
                                          parent=self.view.image))
        self.view.view.placing = lambda start, end, done: self._drag_line(roi, start, end, done)
        self.status.emit("Drag from one point to the other; A keeps the distance with the frame.")

    def accept(self) -> None:
        if not self.rois:
            self.status.emit("Nothing to keep: place a caliper first (C for an ellipse, D for a distance).")
            return
        spacing = self.state.case.spacing_mm
        calipers = []
        for roi in self.rois:
            if isinstance(roi, pg.EllipseROI):
                ellipse = ellipse_of(roi)
                by_model = self.proposal is not None and _same(ellipse, self.proposal[0])
                calipers.append(EllipseCaliper(ellipse, spacing, "model" if by_model else "user",
                                               self.proposal[1] if self.proposal else None))
            else:
                start, end = (roi.mapToParent(handle.pos()) for handle in roi.getHandles())
                calipers.append(DistanceCaliper((start.x(), start.y()), (end.x(), end.y()), spacing))
        self.state.set_calipers(self.state.frame, calipers)
        self.status.emit(f"Kept with frame {self.state.frame}: " + ", ".join(c.describe() for c in calipers) + ".")
        self.show_kept()

    def clear(self) -> None:
        self.state.set_calipers(self.state.frame, [])
        self.show_kept()
        self.status.emit(f"Frame {self.state.frame} has no measurement now.")

    # -- showing ---------------------------------------------------------------------------

    def show_kept(self) -> None:
        """Drop what was being edited; show the frame's kept calipers, which can be adjusted and kept again."""
        for roi in self.rois:
            roi.setParentItem(None)
            if roi.scene() is not None:
                roi.scene().removeItem(roi)
        self.rois, self.proposal, self.view.view.placing = [], None, None
        scored = self.state.scored
        for caliper in (scored.calipers.get(self.state.frame, []) if scored else []):
            if isinstance(caliper, EllipseCaliper):
                roi = self._add(pg.EllipseROI((0, 0), (1, 1), pen=CALIPER_PEN, parent=self.view.image))
                place_ellipse(roi, caliper.ellipse)
                if caliper.by == "model":
                    self.proposal = (ellipse_of(roi), caliper.model_ac_mm)
            else:
                self._add(pg.LineSegmentROI([caliper.start, caliper.end], pen=CALIPER_PEN, parent=self.view.image))

    def _add(self, roi: pg.ROI) -> pg.ROI:
        self.rois.append(roi)
        return roi

    def _can_measure(self) -> bool:
        try:
            check_spacing(self.state.case.spacing_mm)
        except MeasurementError as error:
            self.alert.emit("Measure", f"{str(error)[0].upper()}{str(error)[1:]}.")
            return False
        return True

    def _drag_ellipse(self, roi, start: QPointF, end: QPointF, done: bool) -> None:
        centre = (start + end) / 2
        place_ellipse(roi, Ellipse((centre.x(), centre.y()),
                                   (max(abs(end.x() - start.x()) / 2, 1), max(abs(end.y() - start.y()) / 2, 1)), 0))
        if done:
            self.view.view.placing = None

    def _drag_line(self, roi, start: QPointF, end: QPointF, done: bool) -> None:
        first, second = roi.getHandles()
        roi.movePoint(first, start, finish=False)
        roi.movePoint(second, end)
        if done:
            self.view.view.placing = None


def _same(a: Ellipse, b: Ellipse) -> bool:
    return all(math.isclose(x, y, abs_tol=0.05) for x, y in zip((*a.center, *a.axes, a.angle_deg),
                                                                  (*b.center, *b.axes, b.angle_deg)))
