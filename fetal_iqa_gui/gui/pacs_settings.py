"""Settings' PACS section: the archive File > Send to PACS stores in (host, port, AE titles, TLS),
and a button that C-ECHOes it off the GUI thread and says what it answered."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtWidgets import QCheckBox, QFileDialog, QFormLayout, QGroupBox, QLabel, QLineEdit, QPushButton

from ..pacs.archive import AE_TITLE_LENGTH, check_ae_title
from .settings import AppSettings
from .side_by_side import button, side_by_side
from .whole_number_box import WholeNumberBox
from .workers import EchoThread

_asking: set[EchoThread] = set()  # kept until they end: the dialog may close first (a dead host takes seconds)


class PacsSettingsGroup(QGroupBox):
    def __init__(self, settings: AppSettings, parent=None):
        super().__init__("PACS (DICOM archive)", parent)
        self.settings = settings
        self.worker: EchoThread | None = None  # not `thread`: QObject.thread() is Qt's
        form = QFormLayout(self)
        self.host = self._line(form, "Host", settings.pacs_host, "the archive's host name or address")
        self.port = WholeNumberBox(minimum=1, maximum=65535)
        self.port.setValue(settings.pacs_port)
        self.port.setAccessibleName("Port")
        self.port.setToolTip("The archive's DICOM port (often 104 or 4242; not its web port)")
        form.addRow("Port", self.port)
        self.called_ae = self._line(form, "Called AE title", settings.pacs_called_ae, "the archive's own AE title")
        self.calling_ae = self._line(form, "Calling AE title", settings.pacs_calling_ae,
                                     "our AE title, as the archive knows it")
        for edit in (self.called_ae, self.calling_ae):
            edit.setMaxLength(AE_TITLE_LENGTH)
        self.tls = QCheckBox("DICOM over TLS")
        self.tls.setChecked(settings.pacs_tls)
        form.addRow("", self.tls)
        self.tls_ca = QLineEdit(settings.pacs_tls_ca)
        self.tls_ca.setAccessibleName("CA certificate")
        self.tls_ca.setPlaceholderText("the system's certificate authorities")
        self.tls_ca.setToolTip("The CA certificate (PEM) that signed the archive's TLS certificate: a hospital's own "
                               "CA is rarely among the system's")
        ca_row = side_by_side(self.tls_ca, button("Browse…", "Choose the CA certificate (PEM)", self._choose_ca))
        form.addRow("CA certificate", ca_row)
        self.tls.toggled.connect(ca_row.setEnabled)
        ca_row.setEnabled(settings.pacs_tls)
        self.test = QPushButton("Test connection (C-ECHO)")
        self.test.clicked.connect(self.echo)
        self.answer = QLabel("")
        self.answer.setWordWrap(True)
        self.answer.setAccessibleName("C-ECHO result")
        form.addRow("", side_by_side(self.test, self.answer, stretch=self.answer))

    def _line(self, form: QFormLayout, label: str, value: str, tip: str) -> QLineEdit:
        edit = QLineEdit(value)
        edit.setAccessibleName(label)
        edit.setToolTip(tip[0].upper() + tip[1:])
        edit.setPlaceholderText(tip)
        form.addRow(label, edit)
        return edit

    def values(self) -> dict[str, Any]:
        return {"pacs_host": self.host.text().strip(), "pacs_port": self.port.value(),
                "pacs_called_ae": self.called_ae.text().strip(), "pacs_calling_ae": self.calling_ae.text().strip(),
                "pacs_tls": self.tls.isChecked(), "pacs_tls_ca": self.tls_ca.text().strip()}

    def _choose_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA certificate", self.tls_ca.text(),
                                              "Certificates (*.pem *.crt *.cer);;All files (*)")
        if path:
            self.tls_ca.setText(path)

    def echo(self) -> None:
        """C-ECHO what the fields say now (saved or not), in a thread; the button waits for the answer."""
        chosen = replace(self.settings, **self.values())
        for title in (chosen.pacs_called_ae, chosen.pacs_calling_ae):
            try:
                check_ae_title(title)
            except ValueError as error:
                self._show(False, f"{str(error)[0].upper()}{str(error)[1:]}.")
                return
        archive = chosen.archive()
        if archive is None:
            self._show(False, "Give the archive's host and called AE title.")
            return
        self.test.setEnabled(False)
        self.answer.setText(f"Asking {archive.describe()}…")
        self.worker = thread = EchoThread(archive)  # no parent: closing the dialog must not destroy it running
        _asking.add(thread)
        thread.answered.connect(self._answered)  # bound methods: disconnected when the dialog is gone
        thread.failed.connect(self._failed)
        thread.finished.connect(lambda: _asking.discard(thread))
        thread.start()

    def _answered(self, text: str) -> None:
        self._show(True, text)

    def _failed(self, text: str) -> None:
        self._show(False, text)

    def _show(self, ok: bool, text: str) -> None:
        self.test.setEnabled(True)
        self.answer.setText(("✔ " if ok else "✘ ") + text)
        self.answer.setStyleSheet(f"color: {'#2ecc71' if ok else '#e74c3c'}")
