"""Calipers on the frame view, as an ultrasound machine's: C (ellipse, for the AC) or D (distance),
then a drag on the image places it, its value shown live; its handles adjust it; A keeps it with
the frame. Nothing is kept that was not placed (by the user's drag, or by a segmentation model's
fitted ellipse, proposed). Kept calipers are locked: a drag never moves them, it places a new one;
one is changed only when chosen for editing (E, Enter in the list, or a double-click). Delete
removes the selected one; every keep, edit and delete can be undone. The geometry and the mm are
the core's (`review.calipers`), the undo history too (`review.measurement_history`)."""

from __future__ import annotations

from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal

from ..case.measure import Ellipse, MeasurementError
from ..review.calipers import DistanceCaliper, EllipseCaliper, caliper_at, check_spacing, labels_of, same_shape
from .caliper_graphics import (EDIT_COLOUR, LockedCaliper, caliper_of, editable_ellipse, editable_line, live_text,
                               place_ellipse, put_beside, text_item)
from .frame_view import FrameView
from .state import ViewerState

MIN_PLACED_PX = 4  # a drag shorter than this was a slip, not a caliper
CLICK_TOLERANCE = 8  # screen pixels from a kept caliper's line that a click still means it


class CaliperTool(QObject):
    status = Signal(str)
    alert = Signal(str, str)

    def __init__(self, state: ViewerState, view: FrameView, parent=None):
        super().__init__(parent)
        self.state, self.view = state, view
        # the window's "Set pixel spacing", asked when the file states none
        self.ask_spacing: Callable[[], object] | None = None
        self.locked: list[LockedCaliper] = []  # the frame's kept calipers, in the order kept
        self.roi: pg.ROI | None = None  # the caliper being placed or edited: the only one that moves
        self.kind: type | None = None  # EllipseCaliper or DistanceCaliper, from C or D until kept or dropped
        self.editing: int | None = None  # the kept measurement the ROI edits; None: a new one
        # what the ROI started as: the measurement edited, or the model's proposal
        self.original: EllipseCaliper | DistanceCaliper | None = None
        self.live = text_item(view.image, EDIT_COLOUR)
        self.live.hide()
        state.frame_changed.connect(lambda _: self.show_kept())
        state.case_changed.connect(self.show_kept)
        state.calipers_changed.connect(self._on_calipers_changed)
        state.measurement_selected.connect(self._highlight)
        view.scene().sigMouseClicked.connect(self._on_click)

    @property
    def proposal(self) -> tuple[Ellipse, float | None] | None:
        """The model's ellipse and AC, while they are what is being placed."""
        original = self.original
        if self.editing is None and isinstance(original, EllipseCaliper) and original.by == "model":
            return original.ellipse, original.model_ac_mm
        return None

    @property
    def placing(self) -> bool:
        return self.kind is not None

    # -- the actions ---------------------------------------------------------------------------

    def start_ellipse(self) -> None:
        if not self._start(EllipseCaliper):
            return
        proposed = self.state.open_scored.measurement_of(self.state.frame)
        if proposed is None:
            self.status.emit("Ellipse caliper: drag across the abdomen to place it.")
            return
        spacing = self.state.open_case.spacing_mm
        assert spacing is not None  # _start has checked it
        self.original = EllipseCaliper(proposed.ellipse, spacing, "model", proposed.ac_mm)
        self._hold(editable_ellipse(proposed.ellipse, self.view.image))
        self.status.emit(f"The model's ellipse: AC {proposed.ac_mm:.1f} mm. A keeps it; adjust it with the handles, "
                         "or drag across the abdomen to place your own.")

    def start_distance(self) -> None:
        if self._start(DistanceCaliper):
            self.status.emit("Distance caliper: drag from one point to the other.")

    def accept(self) -> None:
        if self.roi is None:
            self.status.emit("Place the caliper first: drag on the image." if self.placing else
                             "Nothing to keep: press C (ellipse) or D (distance), then drag on the image.")
            return
        caliper, kept, frame = self._caliper(), list(self.state.calipers), self.state.frame
        if self.editing is not None:
            index, label = self.editing, labels_of(kept)[self.editing]
            if same_shape(caliper, self.original):
                self.show_kept()
                self.state.select_measurement(index)
                self.status.emit(f"{label} is unchanged.")
                return
            kept[index], what = caliper, f"edit {label}"
        else:
            duplicate = next((i for i, other in enumerate(kept) if same_shape(other, caliper)), None)
            if duplicate is not None:
                self.status.emit(f"{labels_of(kept)[duplicate]} is already kept here, in that place: nothing added.")
                return
            kept.append(caliper)
            index = len(kept) - 1
            label = labels_of(kept)[index]
            what = f"keep {label}"
        self.state.change_calipers(frame, kept, what)
        self.state.select_measurement(index)
        self.status.emit(f"Kept with frame {frame}: {label}, {caliper.value_text()}. Ctrl+Z undoes it.")

    def edit_selected(self) -> None:
        index = self.state.selected
        if index is None:
            self.status.emit("Select a measurement to edit: click it on the image or in the list."
                             if self.state.calipers else "No measurement on this frame to edit.")
            return
        caliper = self.state.calipers[index]
        self._drop_active()
        self.kind, self.editing, self.original = type(caliper), index, caliper
        self.locked[index].set_visible(False)
        if isinstance(caliper, EllipseCaliper):
            self._hold(editable_ellipse(caliper.ellipse, self.view.image))
        else:
            self._hold(editable_line(caliper.start, caliper.end, self.view.image))
        self.status.emit(f"Editing {labels_of(self.state.calipers)[index]}: adjust it with the handles; "
                         "A keeps the change, Esc leaves it as it was.")

    def delete_selected(self) -> None:
        """Delete drops a caliper not yet kept; else it deletes the measurement edited or selected."""
        if self.placing and self.editing is None:
            self.show_kept()
            self.status.emit("The caliper was dropped; nothing was kept.")
            return
        index = self.editing if self.editing is not None else self.state.selected
        if index is None:
            self.status.emit("Select the measurement to delete: click it on the image or in the list."
                             if self.state.calipers else "No measurement on this frame to delete.")
            return
        kept = list(self.state.calipers)
        label, caliper = labels_of(kept)[index], kept.pop(index)
        self.state.change_calipers(self.state.frame, kept, f"delete {label}")
        self.status.emit(f"Deleted {label} ({caliper.value_text()}). Ctrl+Z brings it back.")

    def delete_all(self) -> None:
        frame, count = self.state.frame, len(self.state.calipers)
        if not count:
            self.status.emit("No measurement on this frame to delete.")
            return
        self.state.change_calipers(frame, [], f"delete all measurements of frame {frame}")
        self.status.emit(f"Deleted the {count} measurement(s) of frame {frame}. Ctrl+Z brings them back.")

    def cancel(self) -> bool:
        """Esc: drop the caliper being placed, or leave the one edited as it was; False if there was none."""
        if not self.placing:
            return False
        editing = self.editing
        self.show_kept()
        self.status.emit("The edit was cancelled: the measurement is as it was." if editing is not None else
                         "The caliper was dropped; nothing was kept.")
        return True

    def undo(self) -> None:
        change = self.state.undo()
        self.status.emit(f"Undone: {change.what} (frame {change.frame}). Ctrl+Shift+Z redoes it." if change
                         else "Nothing to undo.")

    def redo(self) -> None:
        change = self.state.redo()
        self.status.emit(f"Redone: {change.what} (frame {change.frame})." if change else "Nothing to redo.")

    # -- showing ---------------------------------------------------------------------------

    def show_kept(self) -> None:
        """Drop what was being placed or edited; draw the frame's kept calipers, locked."""
        self._drop_active()
        for item in self.locked:
            item.remove()
        calipers = self.state.calipers
        self.locked = [LockedCaliper(c, label, self.view.image) for c, label in zip(calipers, labels_of(calipers))]
        self._highlight(self.state.selected)

    def _on_calipers_changed(self, frame: int) -> None:
        if frame == self.state.frame:
            self.show_kept()

    def _highlight(self, index: int | None) -> None:
        for position, item in enumerate(self.locked):
            item.set_selected(position == index)

    def _start(self, kind: type) -> bool:
        if self.state.open_case.layout.padding[self.state.frame]:
            self.status.emit(f"Frame {self.state.frame} is padding, not an image: there is nothing to measure.")
            return False
        if not self.state.open_case.spacing.known and self.ask_spacing is not None:
            self.ask_spacing()  # as an ultrasound machine's calipers need a depth scale: asked, never guessed
        try:
            check_spacing(self.state.open_case.spacing_mm)
        except MeasurementError as error:
            self.alert.emit("Measure", f"{str(error)[0].upper()}{str(error)[1:]}. Enter it with "
                                       "Measure > Set pixel spacing (from the machine's depth scale).")
            return False
        self._drop_active()
        self.kind = kind
        self.view.view.placing = self._place
        self.view.setCursor(Qt.CursorShape.CrossCursor)
        return True

    def _hold(self, roi: pg.ROI) -> None:
        """The ROI becomes the caliper being placed or edited, its value shown as it changes."""
        self.roi = roi
        roi.sigRegionChanged.connect(self._show_live)
        self._show_live()

    def _drop_roi(self) -> None:
        if self.roi is not None and self.roi.scene() is not None:
            self.roi.scene().removeItem(self.roi)
        self.roi = None
        self.live.hide()

    def _drop_active(self) -> None:
        self._drop_roi()
        self.kind, self.editing, self.original = None, None, None
        self.view.view.placing = None
        self.view.unsetCursor()
        for item in self.locked:
            item.set_visible(True)

    def _caliper(self):
        spacing = self.original.spacing_mm if self.original is not None else self.state.open_case.spacing_mm
        assert spacing is not None  # a caliper is placed only where _start has checked it
        return caliper_of(self.roi, spacing, self.original)

    def _show_live(self) -> None:
        caliper = self._caliper()
        text = live_text(caliper)
        self.live.setText(text)
        put_beside(self.live, caliper)
        self.live.show()
        self.status.emit(text.replace("\n", ", ") + ": A keeps it, Esc drops it.")

    def _place(self, start: QPointF, end: QPointF, done: bool) -> None:
        """A drag on the image places the caliper: corner to corner for an ellipse, end to end for a distance."""
        size = max(abs(end.x() - start.x()), abs(end.y() - start.y()))
        if self.kind is EllipseCaliper:
            centre = (start + end) / 2
            ellipse = Ellipse((centre.x(), centre.y()),
                              (max(abs(end.x() - start.x()) / 2, 1), max(abs(end.y() - start.y()) / 2, 1)), 0)
            if self.roi is None:
                self._hold(editable_ellipse(ellipse, self.view.image))
            else:
                place_ellipse(self.roi, ellipse)
        elif self.roi is None:
            self._hold(editable_line((start.x(), start.y()), (end.x(), end.y()), self.view.image))
        else:
            first, second = self.roi.getHandles()
            self.roi.movePoint(first, start, finish=False)
            self.roi.movePoint(second, end)
        if not done:
            return
        if size < MIN_PLACED_PX:
            proposal = self.proposal
            if proposal is not None:
                place_ellipse(self.roi, proposal[0])  # the model's ellipse, as it was
            else:
                self._drop_roi()
            self.status.emit("Too small to measure: drag across what you measure.")
            return
        self.view.view.placing = None
        self.view.unsetCursor()

    def _on_click(self, event) -> None:
        """A click on a kept caliper selects it, a double-click edits it; a click elsewhere selects none."""
        if event.isAccepted() or event.button() != Qt.MouseButton.LeftButton or self.state.scored is None:
            return
        point = self.view.image.mapFromScene(event.scenePos())
        tolerance = CLICK_TOLERANCE * self.view.view.viewPixelSize()[0]
        index = caliper_at(self.state.calipers, (point.x(), point.y()), tolerance)
        self.state.select_measurement(index)
        if index is not None and event.double():
            self.edit_selected()
