"""The heat map over the frame (H): what the model used for its score, computed off the GUI thread.

One map at a time is computed (`HeatMapThread`); while it runs, the frames the user scrubs past
are not queued: when it ends, the frame on screen then is the one computed next (latest request
wins). Maps are kept per frame by the explainer (engine/explain.py), so a frame seen again shows
its map at once. The explainer is made for the engine that scores, and dropped with it.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, Signal

from .frame_view import FrameView
from .state import ViewerState
from .workers import HeatMapThread

if TYPE_CHECKING:
    from ..engine.explain import Explainer
    from ..engine.scoring import Engine

COMPUTING = "computing…"
# the default method's description (explain.DESCRIPTIONS), here without importing torch at start-up
WHAT = "attention rollout: where the model's attention went for the quality score"


class HeatMaps(QObject):
    status = Signal(str)

    def __init__(self, state: ViewerState, view: FrameView, engine: Callable[[], Engine | None], parent=None):
        super().__init__(parent)
        self.state, self.view, self.engine = state, view, engine
        self.visible = False
        self.worker: HeatMapThread | None = None
        self.explainer: Explainer | None = None
        self._explains: Engine | None = None  # the engine the explainer was made for
        self._failed_for: Engine | None = None  # the engine whose explainer failed: not asked again
        self._closed = False
        state.frame_changed.connect(lambda _frame: self.refresh())
        state.case_changed.connect(self.refresh)
        state.model_changed.connect(self.refresh)

    def toggle(self) -> None:
        self.visible = not self.visible
        self.status.emit(f"Heat map on: {WHAT}. H hides it." if self.visible else "Heat map off.")
        self.refresh()

    def refresh(self) -> None:
        """Show the current frame's map if it is known, else ask for it (and say it is coming)."""
        if not self.visible or self._closed:
            self.view.show_heat_map(None, None)
            return
        reason = self._unavailable()
        if reason:
            self.view.show_heat_map(None, reason)
            return
        engine = self.engine()
        if engine is not self._explains:  # another model or engine: its maps are not this one's
            self.explainer, self._explains = None, engine
        key = (self.state.open_case.content_hash, self.state.frame)
        heat = self.explainer.cached(*key) if self.explainer is not None else None
        if heat is not None:
            self.view.show_heat_map(heat.colours, heat.description)
            return
        self.view.show_heat_map(None, COMPUTING)
        if self.worker is None:
            self._start(engine, key)

    def _unavailable(self) -> str | None:
        """Why the frame on screen has no map, in words; None when it can have one."""
        state = self.state
        if state.case is None:
            return "open a sweep"
        if state.case.layout.padding[state.frame]:
            return "none on a padding frame"
        if state.model is None or self.engine() is None:
            return "once the model has loaded"
        if state.model.is_segmentation:
            return "explains a classification model's score; this model segments (M shows its mask)"
        if self.engine() is self._failed_for:
            return "cannot be computed for this model (the status line said why)"
        return None

    def _start(self, engine, key: tuple[str, int]) -> None:
        self.worker = worker = HeatMapThread(self.explainer, engine, key, self.state.open_case.frames[key[1]], self)
        worker.done.connect(partial(self._on_done, worker))
        worker.failed.connect(partial(self._on_failed, worker))
        worker.finished.connect(partial(self._on_finished, worker))
        worker.start()

    def _on_done(self, thread: HeatMapThread, explainer, key, heat) -> None:
        if thread.engine is self.engine():
            self.explainer, self._explains = explainer, thread.engine

    def _on_failed(self, thread: HeatMapThread, message: str) -> None:
        self._failed_for = thread.engine
        self.status.emit(message)

    def _on_finished(self, thread: HeatMapThread) -> None:
        if thread is self.worker:
            self.worker = None
            self.refresh()  # the frame on screen now: shown from the cache, or computed next

    def shutdown(self) -> None:
        """The window is closing: wait for the map being computed (one forward pass), start no other."""
        self._closed = True
        if self.worker is not None:
            self.worker.wait()
