"""File > Live source…: asking for the source and where to record it, and opening the live view
on it with the window's model and engine (the recording opens as a case when it stops)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog

from ..live.recording import Recording
from ..live.session import LiveSession
from ..live.source import Region, open_source
from ..model.spec import DEMO_LABEL
from .live_source_dialog import LiveChoice, LiveSourceDialog
from .live_thread import LiveThread
from .live_view import LiveView
from .workers import warm_engine


def ask_source(window) -> LiveChoice | None:
    """The source, its image region and spacing and the file to record in, as the user gives them; None if cancelled."""
    dialog = LiveSourceDialog(window)  # exec() from here, as every dialog of the window (the tests answer it)
    return dialog.choice() if dialog.exec() == QDialog.DialogCode.Accepted else None


def start(window, source: str, record: Path | None, predict=None, make_explainer=None,
          region: Region | str | None = None, spacing_mm: float | None = None) -> LiveView:
    """The live view on `source`, shown and running (`predict`, `make_explainer`: stand-ins for the
    model and its heat maps, for tests); `region`: None (the whole frame), "auto" or a Region."""
    session = window.session
    spec, settings = session.model_spec(), session.engine_settings()

    def open_session(on_score):
        live = open_source(source, region if isinstance(region, Region) else None)
        if region == "auto":
            live.find_region()  # its frames are delivered and recorded too
        recording = (Recording(record, live.name, live.frame_rate, live.region, spacing_mm, overwrite=True)
                     if record else None)
        if predict is not None:
            return LiveSession(live, predict, 0.5, recording, on_score)
        engine = warm_engine(spec, settings)
        return LiveSession(live, lambda frames: engine.predict(frames)[0], engine.model.threshold, recording,
                           on_score)

    warning = f"{DEMO_LABEL}." if spec.demo and predict is None else ""
    if predict is None and make_explainer is None:
        def make_explainer():  # the engine the session scores with (warm_engine keeps it)
            from ..engine.explain import Explainer, fp32_module
            return Explainer(fp32_module(warm_engine(spec, settings)))
    view = LiveView(LiveThread(open_session, window), source, window, warning, make_explainer)
    view.recorded.connect(window.open_path)
    view.show()
    view.worker.start()
    return view
