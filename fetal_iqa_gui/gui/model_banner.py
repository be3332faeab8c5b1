"""The banner above the frame: what the user must know about the model (a demo; no real weights)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from ..model.spec import DEMO_LABEL, real_weights_configured
from ..base.resources import user_weights_dir
from .state import ViewerState


class ModelBanner(QLabel):
    def __init__(self, state: ViewerState, settings, parent=None):
        super().__init__(parent, wordWrap=True)
        self.state, self.settings = state, settings  # settings: a function, the window's may be replaced
        self.setAccessibleName("Model notice")
        self.setStyleSheet("QLabel { background: #7a5200; color: white; padding: 6px; }")
        state.model_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        notes = []
        model = self.state.model
        if model is not None and model.is_demo:
            notes.append(f"⚠ {DEMO_LABEL}.")
        if not real_weights_configured() and not self.settings().weights:
            notes.append(f"No FetalCLIP weights are configured: put FetalCLIP_weights.pt in {user_weights_dir()} "
                         "or choose it in File > Settings, with a trained adapter.")
        self.setText(" ".join(notes))
        self.setVisible(bool(notes))
