"""File > Live source…: what to score live (a capture device, a video file, a picture folder), where
the image is on it (the whole frame, found by what changes, or x,y,width,height), its spacing from
the scanner's depth scale (or unknown), and the file to record it in. The region and spacing are
kept per source: the same capture device on the same scanner is set up once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLabel, QLineEdit

from ..live.source import Region
from .decimal_box import DecimalBox
from .settings import VERSION, settings_store
from .side_by_side import button, side_by_side

WHOLE, AUTO = "the whole frame", "find it (what changes)"


@dataclass(frozen=True)
class LiveChoice:
    source: str
    region: Region | str | None  # None: the whole frame; "auto": found by what changes
    spacing_mm: float | None  # None: unknown
    record: Path | None  # None: not recorded


class LiveSourceDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Live source")
        form = QFormLayout(self)
        self.source = QLineEdit(str(settings_store().value(f"{VERSION}/live/last_source", "0")))
        self.source.setAccessibleName("Source")
        self.source.setToolTip("A camera index (0, 1…: a capture device on the scanner's video output), a video "
                               "file or a folder of pictures")
        self.source.editingFinished.connect(self._recall)
        form.addRow("Source", side_by_side(self.source, button("File…", "Choose a video file", self._choose_file),
                                           button("Folder…", "Choose a folder of pictures", self._choose_folder)))
        self.region = QComboBox()
        self.region.setEditable(True)
        self.region.addItems([WHOLE, AUTO])
        self.region.setAccessibleName("Image region")
        self.region.setToolTip("Where the ultrasound image is on the frame: the whole frame, found by what changes "
                               "over the first second, or typed as x,y,width,height in pixels")
        form.addRow("Image region", self.region)
        self.spacing = DecimalBox(decimals=4, minimum=0.0, maximum=10.0, singleStep=0.01)
        self.spacing.setSpecialValueText("unknown")
        self.spacing.setSuffix(" mm/pixel")
        self.spacing.setAccessibleName("Spacing")
        self.spacing.setToolTip("mm per pixel of the image, from the scanner's depth scale; unknown: the recording "
                                "says so and measures in pixels")
        form.addRow("Spacing", self.spacing)
        self.record = QLineEdit(str(Path.home() / f"live-{datetime.now():%Y%m%d-%H%M}.mha"))
        self.replace_confirmed = ""  # a file the save dialog asked about replacing
        self.record.setAccessibleName("Record to")
        self.record.setPlaceholderText("not recorded")
        form.addRow("Record to", side_by_side(self.record, button("Browse…", "Choose the recording's file",
                                                                  self._choose_record)))
        self.said = QLabel("")
        self.said.setStyleSheet("color: #e74c3c")
        self.said.setWordWrap(True)
        form.addRow("", self.said)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._recall()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A video file", self.source.text(), "Videos (*.mkv *.avi *.mp4 "
                                              "*.mov);;All files (*)")
        if path:
            self.source.setText(path)
            self._recall()

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A folder of pictures", self.source.text())
        if path:
            self.source.setText(path)
            self._recall()

    def _choose_record(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Record the session as", self.record.text() or "live.mha",
                                              "MetaImage (*.mha)")
        if path:
            self.record.setText(path)
            self.replace_confirmed = path  # the save dialog asked, if it exists

    def _recall(self) -> None:
        """The region and spacing this source had last time."""
        kept, key = settings_store(), self._key()
        self.region.setCurrentText(str(kept.value(f"{key}/region", WHOLE)))
        try:
            self.spacing.setValue(float(kept.value(f"{key}/spacing_mm", 0.0)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.spacing.setValue(0.0)

    def _key(self) -> str:
        return f"{VERSION}/live/" + self.source.text().strip().replace("/", "|")

    def choice(self) -> LiveChoice | None:
        """What the fields say, or None (and the dialog says why) when the region cannot be read."""
        source, text = self.source.text().strip(), self.region.currentText().strip()
        if not source:
            self.said.setText("Give a camera index, a video file or a picture folder.")
            return None
        region: Region | str | None = None if text in ("", WHOLE) else "auto" if text == AUTO else None
        if text not in ("", WHOLE, AUTO):
            try:
                region = Region.parse(text)
            except ValueError as error:
                self.said.setText(f"The image region: {error}.")
                return None
        record = self.record.text().strip()
        if record and Path(record).exists() and record != self.replace_confirmed:
            self.said.setText(f"{Path(record).name} exists: choose another name, or Browse… to replace it.")
            return None
        return LiveChoice(source, region, self.spacing.value() or None, Path(record) if record else None)

    def accept(self) -> None:
        chosen = self.choice()
        if chosen is None:
            return
        kept, key = settings_store(), self._key()
        kept.setValue(f"{VERSION}/live/last_source", chosen.source)
        kept.setValue(f"{key}/region", self.region.currentText().strip() or WHOLE)
        kept.setValue(f"{key}/spacing_mm", chosen.spacing_mm or 0.0)
        super().accept()
