"""The status bar: what is happening, the export folder, the files waiting for the archive,
scoring progress and its Cancel button, Stop sending while a send to the archive runs, and whether
the scanner's sweeps are being received."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QSizePolicy, QStatusBar


class MessageLabel(QLabel):
    """The message, its whole text in the tooltip where the line cuts it."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)


class StatusLine(QStatusBar):
    def __init__(self, on_cancel, parent=None):
        super().__init__(parent)
        self.text = MessageLabel("Open a sweep: File > Open (Ctrl+O), or drop a file here.")
        # a long message is cut at the right, rather than pushing the folder and the outbox out of sight
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.export_folder = QLabel()
        self.export_folder.setToolTip("Where Ctrl+E exports the current frame (File > Settings changes it)")
        self.outbox = QLabel()
        self.outbox.setAccessibleName("Outbox")
        self.outbox.setToolTip("DICOM files not yet stored in the archive (PACS); File > Send queued files sends them")
        self.outbox.hide()
        self.receiving = QLabel()
        self.receiving.setAccessibleName("Receiving")
        self.receiving.setToolTip("The scanner's sweeps are received while the window is open (File > Settings)")
        self.receiving.hide()
        self.stop_sending = QPushButton("Stop sending")
        self.stop_sending.setToolTip("Stop sending to the archive after the current file; the rest stays queued")
        self.stop_sending.hide()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setAccessibleName("Scoring progress")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop scoring (Esc); the scores so far stay")
        self.cancel_button.clicked.connect(on_cancel)
        self.cancel_button.hide()
        self.addWidget(self.text, 1)
        for widget in (self.export_folder, self.outbox, self.receiving, self.stop_sending, self.progress,
                       self.cancel_button):
            self.addPermanentWidget(widget)

    def show_progress(self, done: int, total: int) -> None:
        """`total` 0: busy without a measure; -1: nothing running."""
        self.progress.setVisible(total >= 0)
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)

    def show_export_folder(self, text: str) -> None:
        self.export_folder.setText(f"Export folder: {text}")

    def show_outbox(self, queued: int) -> None:
        self.outbox.setText(f"Outbox: {queued} queued for PACS")
        self.outbox.setVisible(queued > 0)

    def show_receiving(self, text: str) -> None:
        self.receiving.setText(text)
        self.receiving.setVisible(bool(text))
