"""The settings dialog: model files, the engine's settings (a row for each, made from their
declaration), each kind of model's default threshold, the export folder and what an export holds,
the PACS (pacs_settings.py) and receiving from the scanner (receive_settings.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QLineEdit, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from ..base.resources import DEMO_MODELS
from ..case.loading import SWEEP_PATTERNS
from ..model.task import DEFAULT_THRESHOLDS, SCORE_MEANING, TASKS
from .decimal_box import DecimalBox
from .pacs_settings import PacsSettingsGroup
from .receive_settings import ReceiveSettingsGroup
from .settings import WINDOW_ENGINE_SETTINGS, AppSettings
from .side_by_side import button, side_by_side
from .whole_number_box import WholeNumberBox

MODEL_WORDS = {"weights": "FetalCLIP weights", "config": "Model config (JSON)", "adapter": "Adapter"}
BLANK_WORDS = "blank everything outside the ultrasound image (burned-in text)"
DEIDENTIFIED_WORDS = "de-identified view: hide the patient's name, ID and birth date on screen"


def window_words() -> dict[str, str]:
    """How the window names the user's choices in errors' advice."""
    engine = {name: f"Settings > {setting.label}" for name, setting in WINDOW_ENGINE_SETTINGS}
    return {**{name: f"Settings > {label}" for name, label in MODEL_WORDS.items()}, **engine,
            "model": "the model in Settings", "threads": "fewer CPU threads", "force": "another folder",
            "blank_outside_image": f"Settings > {BLANK_WORDS}"}


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        # three pages, so that the dialog fits a laptop's screen (768 pixels high)
        tabs = QTabWidget()
        form, outputs, network = (self._page(tabs, title) for title in ("Model && engine", "Export && privacy",
                                                                        "PACS && scanner"))
        self.weights = self._path_row(form, MODEL_WORDS["weights"], settings.weights, "PyTorch (*.pt *.pth)")
        self.config = self._path_row(form, MODEL_WORDS["config"], settings.config, "JSON (*.json)")
        self.adapter = self._path_row(form, MODEL_WORDS["adapter"], settings.adapter, "Adapters (*.safetensors *.ckpt)")
        self.adapter.setPlaceholderText("the first in the user model folder, else the demo model")
        self.demo_task = QComboBox()
        self.demo_task.addItems([task for task, path in DEMO_MODELS.items() if path.is_file()])  # the shipped ones
        self.demo_task.setCurrentText(settings.demo_task)
        self.demo_task.setToolTip("The demo model used while there is no adapter")
        form.addRow("Demo model (no adapter)", self.demo_task)
        self.engine_rows: dict[str, QWidget] = {}
        for name, setting in WINDOW_ENGINE_SETTINGS:
            self.engine_rows[name] = self._engine_row(form, name, setting)
            setattr(self, name, self.engine_rows[name])  # dialog.backend, dialog.calibration, ...
        self.thresholds = {task: self._threshold_row(form, task) for task in TASKS}
        self.export_dir = self._path_row(outputs, "Export folder", settings.export_dir, None)
        self.export_overlay = QCheckBox("also export a copy with the overlay")
        self.export_overlay.setChecked(settings.export_overlay)
        outputs.addRow("", self.export_overlay)
        self.export_heat_maps = QCheckBox("also export each frame's heat map, and show it in the report")
        self.export_heat_maps.setToolTip("What the model used for its score (H shows it): an explanation aid, "
                                         "not a measurement. Classification models only.")
        self.export_heat_maps.setChecked(settings.export_heat_maps)
        outputs.addRow("", self.export_heat_maps)
        self.sidecar_name_only = QCheckBox("name the sweep in sidecars by its file name only (no folders)")
        self.sidecar_name_only.setToolTip("Folder names may name the patient; the sidecar's 'source' then holds "
                                          "the file name alone")
        self.sidecar_name_only.setChecked(settings.sidecar_name_only)
        outputs.addRow("", self.sidecar_name_only)
        self.blank_outside_image = QCheckBox(BLANK_WORDS)
        self.blank_outside_image.setToolTip(
            "Scanners write the institution, the date and the patient's identifiers as pixels beside the image. "
            "Exported frames and case reports then show only the image: the DICOM's ultrasound regions, else the "
            "ACOUSLIC-AI probe's field of view (744 x 562 frames); a recording with neither is not exported")
        self.blank_outside_image.setChecked(settings.blank_outside_image)
        outputs.addRow("", self.blank_outside_image)
        self.deidentified_view = QCheckBox(DEIDENTIFIED_WORDS)
        self.deidentified_view.setToolTip(
            "For teaching, screenshots or a screen others can see: the patient strip and the window's title show "
            "no name, ID, birth date or accession number. Only the screen changes: the report and the other "
            "outputs still carry the patient's details")
        self.deidentified_view.setChecked(settings.deidentified_view)
        outputs.addRow("", self.deidentified_view)
        self.pacs = PacsSettingsGroup(settings)  # a section of its own
        network.addRow(self.pacs)
        self.receive = ReceiveSettingsGroup(settings)
        network.addRow(self.receive)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)
        self.tabs = tabs

    @staticmethod
    def _page(tabs: QTabWidget, title: str) -> QFormLayout:
        page = QWidget()
        tabs.addTab(page, title)
        return QFormLayout(page)

    def accept(self) -> None:
        if self.receive.check():
            super().accept()
        else:  # the receive section says what is missing, and the dialog stays on it
            self.tabs.setCurrentIndex(self.tabs.count() - 1)  # its page: the last

    def _engine_row(self, form: QFormLayout, name: str, setting) -> QWidget:
        value = getattr(self.settings, name)
        widget: QWidget
        if setting.choices:
            widget = choice = QComboBox()
            choice.addItems(setting.choices)
            choice.setCurrentText(value)
        elif setting.bounds:
            widget = number = WholeNumberBox(minimum=0, maximum=setting.bounds[1])  # 0: automatic
            number.setValue(value)
            number.setSpecialValueText("automatic")
        else:
            path = self._path_row(form, setting.label, value, f"Sweeps ({SWEEP_PATTERNS})")
            path.setPlaceholderText("the first sweep scored")
            path.setToolTip(setting.full_help)
            return path
        widget.setToolTip(setting.full_help)
        widget.setAccessibleName(setting.label)
        form.addRow(setting.label, widget)
        return widget

    def _threshold_row(self, form: QFormLayout, task: str) -> DecimalBox:
        box = DecimalBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.01 if task == "classification" else 0.001)
        box.setValue(self.settings.default_threshold(task) or 0.0)
        box.setSpecialValueText("the model's own")
        box.setToolTip(f"A {task} model's score is the {SCORE_MEANING[task]}; a frame is good from this score on "
                       f"(the model's own, usually {DEFAULT_THRESHOLDS[task]}, when not set)")
        label = f"Default threshold ({'CLS' if task == 'classification' else 'SEG'})"
        box.setAccessibleName(label)
        form.addRow(label, box)
        return box

    def _path_row(self, form: QFormLayout, label: str, value: str, file_filter: str | None) -> QLineEdit:
        edit = QLineEdit(value)
        edit.setAccessibleName(label)

        def choose():
            if file_filter is None:
                path = QFileDialog.getExistingDirectory(self, label, edit.text())
            else:
                path, _ = QFileDialog.getOpenFileName(self, label, edit.text(), file_filter)
            if path:
                edit.setText(path)

        row = side_by_side(edit, button("Browse…", f"Choose the {label.lower()}", choose))
        form.addRow(label, row)
        return edit

    def result_settings(self) -> AppSettings:
        engine: dict[str, Any] = {}  # each setting its own kind of value
        for name, widget in self.engine_rows.items():
            if isinstance(widget, QComboBox):
                engine[name] = widget.currentText()
            elif isinstance(widget, QSpinBox):
                engine[name] = widget.value()
            else:
                engine[name] = cast(QLineEdit, widget).text().strip()  # a path row
        thresholds: dict[str, Any] = {f"threshold_{task}": box.value() for task, box in self.thresholds.items()}
        return replace(self.settings, weights=self.weights.text().strip(), config=self.config.text().strip(),
                       adapter=self.adapter.text().strip(), demo_task=self.demo_task.currentText(),
                       export_dir=self.export_dir.text().strip(), export_overlay=self.export_overlay.isChecked(),
                       export_heat_maps=self.export_heat_maps.isChecked(),
                       sidecar_name_only=self.sidecar_name_only.isChecked(),
                       blank_outside_image=self.blank_outside_image.isChecked(),
                       deidentified_view=self.deidentified_view.isChecked(), **engine, **thresholds,
                       **self.pacs.values(), **self.receive.values())
