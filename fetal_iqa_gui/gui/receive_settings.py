"""Settings' section for receiving from the scanner while the window is open (as `fetal-iqa listen`
does): the folder received sweeps go into, our AE title and port, and the scanners accepted."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QFileDialog, QFormLayout, QGroupBox, QLabel, QLineEdit

from ..pacs.archive import AE_TITLE_LENGTH, check_ae_title
from .settings import AppSettings, ae_titles
from .side_by_side import button, side_by_side
from .whole_number_box import WholeNumberBox


class ReceiveSettingsGroup(QGroupBox):
    def __init__(self, settings: AppSettings, parent=None):
        super().__init__("Receive from the scanner (DICOM storage)", parent)
        form = QFormLayout(self)
        self.on = QCheckBox("receive the sweeps the scanner sends while this window is open")
        self.on.setToolTip("The scanner sends its studies here (C-STORE); each series becomes a case of the "
                           "folder below, which the worklist shows and scores")
        self.on.setChecked(settings.receive_on)
        form.addRow("", self.on)
        self.folder = QLineEdit(settings.receive_folder)
        self.folder.setAccessibleName("Receive folder")
        self.folder.setPlaceholderText("the worklist folder received series go into")
        form.addRow("Receive folder", side_by_side(self.folder, button(
            "Browse…", "Choose the folder received sweeps go into", self._choose_folder)))
        self.ae_title = QLineEdit(settings.receive_ae_title)
        self.ae_title.setAccessibleName("Our AE title")
        self.ae_title.setMaxLength(AE_TITLE_LENGTH)
        self.ae_title.setToolTip("The AE title the scanner calls us by (its destination's AE title)")
        form.addRow("Our AE title", self.ae_title)
        self.port = WholeNumberBox(minimum=1, maximum=65535)
        self.port.setValue(settings.receive_port)
        self.port.setAccessibleName("Receive port")
        self.port.setToolTip("The port the scanner sends to (11112 is DICOM's; below 1024 needs administrator rights)")
        form.addRow("Receive port", self.port)
        self.allowed = QLineEdit(settings.receive_allowed)
        self.allowed.setAccessibleName("Scanners accepted")
        self.allowed.setPlaceholderText("the scanners' AE titles, e.g. VOLUSON1, LOGIQ_E10")
        self.allowed.setToolTip("Only these calling AE titles may send; anyone else is refused")
        form.addRow("Scanners accepted", self.allowed)
        self.said = QLabel("")  # why OK does not close the dialog, when it does not
        self.said.setWordWrap(True)
        self.said.setStyleSheet("color: #e74c3c")
        self.said.hide()
        form.addRow("", self.said)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Receive folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def values(self) -> dict:
        return {"receive_on": self.on.isChecked(), "receive_folder": self.folder.text().strip(),
                "receive_port": self.port.value(), "receive_ae_title": self.ae_title.text().strip() or "FETALIQA",
                "receive_allowed": ", ".join(ae_titles(self.allowed.text()))}

    def check(self) -> bool:
        """Whether receiving can run as set (or is off); else the group says why."""
        problem = self._problem()
        self.said.setText(problem)
        self.said.setVisible(bool(problem))
        return not problem

    def _problem(self) -> str:
        values = self.values()
        if not values["receive_on"]:
            return ""
        if not values["receive_folder"]:
            return "Receiving needs the folder received sweeps go into."
        titles = ae_titles(values["receive_allowed"])
        if not titles:
            return "Receiving needs the AE title of at least one scanner it accepts."
        for title in (values["receive_ae_title"], *titles):
            try:
                check_ae_title(title)
            except ValueError as error:
                return f"{str(error)[0].upper()}{str(error)[1:]}."
        return ""
