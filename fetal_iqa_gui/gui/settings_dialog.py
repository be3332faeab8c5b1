"""The settings dialog: model files, device, precision, backend, batch size, threshold, export folder."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QWidget)

from ..resources import DEMO_MODELS
from ..runtime import BACKENDS, DEVICES, PRECISIONS
from ..sweep import SWEEP_PATTERNS
from .settings import AppSettings


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        form = QFormLayout(self)
        self.weights = self._path_row(form, "FetalCLIP weights", settings.weights, "PyTorch (*.pt *.pth)")
        self.config = self._path_row(form, "Model config (JSON)", settings.config, "JSON (*.json)")
        self.adapter = self._path_row(form, "Adapter", settings.adapter, "Adapters (*.safetensors *.ckpt)")
        self.demo_task = QComboBox()
        self.demo_task.addItems([task for task, path in DEMO_MODELS.items() if path.is_file()])  # the shipped ones
        self.demo_task.setCurrentText(settings.demo_task)
        self.demo_task.setToolTip("The demo model used while no adapter is set")
        form.addRow("Demo model (no adapter)", self.demo_task)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        form.addRow("Device", self.device)
        self.precision = QComboBox()
        self.precision.addItems(PRECISIONS)
        self.precision.setCurrentText(settings.precision)
        form.addRow("Precision", self.precision)
        self.backend = QComboBox()
        self.backend.addItems(BACKENDS)
        self.backend.setCurrentText(settings.backend)
        self.backend.setToolTip("auto: OpenVINO or ONNX Runtime on a CPU where installed (pip install 'fetal-iqa[cpu]'), "
                                "else torch")
        form.addRow("Backend", self.backend)
        self.calibration = self._path_row(form, "Calibration sweep", settings.calibration, f"Sweeps ({SWEEP_PATTERNS})")
        self.calibration.setPlaceholderText("the first sweep scored")
        self.calibration.setToolTip("OpenVINO's int8 of a real model is calibrated on this sweep's frames "
                                    "(converted again when it changes)")
        self.batch_size = QSpinBox(minimum=0, maximum=1024)
        self.batch_size.setValue(settings.batch_size)
        self.batch_size.setSpecialValueText("automatic")
        form.addRow("Batch size", self.batch_size)
        self.threshold = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.01)
        self.threshold.setValue(settings.threshold)
        self.threshold.setSpecialValueText("the model's own")
        form.addRow("Default threshold", self.threshold)
        self.export_dir = self._path_row(form, "Export folder", settings.export_dir, None)
        self.export_overlay = QCheckBox("also export a copy with the overlay")
        self.export_overlay.setChecked(settings.export_overlay)
        form.addRow("", self.export_overlay)
        self.sidecar_name_only = QCheckBox("name the sweep in sidecars by its file name only (no folders)")
        self.sidecar_name_only.setToolTip("Folder names may name the patient; the sidecar's 'source' then holds "
                                          "the file name alone")
        self.sidecar_name_only.setChecked(settings.sidecar_name_only)
        form.addRow("", self.sidecar_name_only)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _path_row(self, form: QFormLayout, label: str, value: str, file_filter: str | None) -> QLineEdit:
        edit = QLineEdit(value)
        edit.setAccessibleName(label)
        browse = QPushButton("Browse…")
        browse.setToolTip(f"Choose the {label.lower()}")

        def choose():
            if file_filter is None:
                path = QFileDialog.getExistingDirectory(self, label, edit.text())
            else:
                path, _ = QFileDialog.getOpenFileName(self, label, edit.text(), file_filter)
            if path:
                edit.setText(path)

        browse.clicked.connect(choose)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit)
        layout.addWidget(browse)
        form.addRow(label, row)
        return edit

    def result_settings(self) -> AppSettings:
        return replace(self.settings, weights=self.weights.text().strip(), config=self.config.text().strip(),
                       adapter=self.adapter.text().strip(), demo_task=self.demo_task.currentText(),
                       device=self.device.currentText(), precision=self.precision.currentText(),
                       batch_size=self.batch_size.value(), threshold=self.threshold.value(),
                       export_dir=self.export_dir.text().strip(), export_overlay=self.export_overlay.isChecked(),
                       sidecar_name_only=self.sidecar_name_only.isChecked(), backend=self.backend.currentText(),
                       calibration=self.calibration.text().strip())
