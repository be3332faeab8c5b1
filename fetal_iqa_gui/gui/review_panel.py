"""The side panel: each sweep's best frame, the threshold, the frame's measurements and the model's
AC, window/level."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .best_frames_widget import BestFramesWidget
from .decimal_box import DecimalBox
from .frame_view import FULL_LEVELS
from .measurement_list import MeasurementList
from .state import ViewerState
from .whole_number_box import WholeNumberBox

FULL_WINDOW = FULL_LEVELS[1] - FULL_LEVELS[0]
MID_LEVEL = (FULL_LEVELS[0] + FULL_LEVELS[1] + 1) // 2


class ReviewPanel(QWidget):
    levels_changed = Signal(float, float)  # low, high grey levels of the display
    editing_done = Signal()  # a field was committed: the keys go back to the frame

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.best_frames = BestFramesWidget(state)
        # the value is committed on Enter or leaving the box, not per keystroke: typing 0.45 must not
        # pass through 0.4 (and get rewritten by the state's echo) on its way
        self.threshold_box = DecimalBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.01,
                                            keyboardTracking=False)
        self.threshold_box.setAccessibleName("Threshold")
        self.threshold_box.setToolTip("Score a frame must reach to count as good (Enter applies)")
        self.threshold_box.valueChanged.connect(state.set_threshold)
        self.threshold_box.editingFinished.connect(self.editing_done)
        state.threshold_changed.connect(self._show_threshold)
        state.case_changed.connect(self._on_model)
        state.model_changed.connect(self._on_model)
        state.frame_changed.connect(lambda _: self._show_measurement())
        state.scores_changed.connect(self._on_scores)
        self.measurements = MeasurementList(state)
        state.spacing_changed.connect(self._show_measurement)
        self.ac_label = QLabel()
        self.ac_label.setAccessibleName("Abdominal circumference")
        self.ac_label.setWordWrap(True)
        self.window_box = WholeNumberBox(minimum=1, maximum=FULL_WINDOW, value=FULL_WINDOW, prefix="W ",
                                   keyboardTracking=False)
        self.level_box = WholeNumberBox(minimum=FULL_LEVELS[0], maximum=FULL_LEVELS[1], value=MID_LEVEL, prefix="L ",
                                  keyboardTracking=False)
        for box, name in ((self.window_box, "Window"), (self.level_box, "Level")):
            box.setAccessibleName(name)
            box.setToolTip(f"Display {name.lower()} (grey levels; or right-drag on the image); "
                           "the exported pixels are unchanged")
            box.valueChanged.connect(self._apply_levels)
            box.editingFinished.connect(self.editing_done)
        reset = QPushButton("Reset")
        reset.setToolTip("Reset window/level to the full range (R)")
        reset.clicked.connect(self.reset_levels)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Best frame per sweep</b>"))
        layout.addWidget(self.best_frames)
        row = QHBoxLayout()
        row.addWidget(QLabel("Threshold"))
        row.addWidget(self.threshold_box)
        layout.addLayout(row)
        layout.addWidget(self.measurements)
        layout.addWidget(self.ac_label)
        levels = QHBoxLayout()
        for widget in (self.window_box, self.level_box, reset):
            levels.addWidget(widget)
        layout.addLayout(levels)
        self._on_model()

    def _on_model(self) -> None:
        """Until the model is known (loading, converting) so is not its threshold: a dash, not 0.000."""
        known = self.state.model is not None
        self.threshold_box.setEnabled(known)
        self.threshold_box.setSpecialValueText("" if known else "–")
        self._show_threshold(self.state.threshold if known else self.threshold_box.minimum())

    def _show_threshold(self, value: float) -> None:
        self.threshold_box.blockSignals(True)  # showing the state's value is not a new choice
        self.threshold_box.setValue(value)
        self.threshold_box.blockSignals(False)

    def _apply_levels(self) -> None:
        half = self.window_box.value() / 2
        self.levels_changed.emit(self.level_box.value() - half, self.level_box.value() + half)

    def drag_levels(self, window_change: float, level_change: float) -> None:
        """Right-drag on the image: move window and level as the boxes would."""
        self.window_box.setValue(round(self.window_box.value() + window_change))
        self.level_box.setValue(round(self.level_box.value() + level_change))

    def reset_levels(self) -> None:
        self.window_box.setValue(FULL_WINDOW)
        self.level_box.setValue(MID_LEVEL)
        self.levels_changed.emit(*FULL_LEVELS)

    def _on_scores(self, frames) -> None:
        if frames is None or self.state.frame in frames:
            self._show_measurement()

    def _show_measurement(self) -> None:
        """The model's own AC (SEG models), beside the user's measurements."""
        scored = self.state.scored
        measurement = scored.measurement_of(self.state.frame) if scored else None
        if measurement is not None:
            text = f"Model's {measurement.describe_ac()} (ellipse fit {measurement.fit_quality}); C proposes it"
        elif scored and scored.masks is not None:
            text = "Model's AC: no abdomen mask on this frame"
        else:
            text = ""
        self.ac_label.setText(text)
        self.ac_label.setVisible(bool(text))
