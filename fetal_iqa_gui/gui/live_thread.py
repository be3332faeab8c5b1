"""The live session's thread: a thin loop over `LiveSession.frames()` (live/session.py).

The newest frame is kept in `latest` and announced without a payload: the view shows whatever is
newest when it gets to it, so a busy window skips frames instead of queueing them. Scores come from
the session's own scoring thread, re-emitted as they arrive."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable

import numpy as np
from PySide6.QtCore import QThread, Signal

from ..base.errors import FetalIqaError

if TYPE_CHECKING:
    from ..live.session import LiveScore, LiveSession

log = logging.getLogger(__name__)


class LiveThread(QThread):
    frame_ready = Signal()  # `latest` holds a new frame
    scored = Signal(object)  # a LiveScore
    ended = Signal(object)  # the LiveSummary
    failed = Signal(str)

    def __init__(self, open_session: Callable[[Callable[[LiveScore], None]], LiveSession], parent=None):
        """`open_session(on_score)`: the LiveSession to run (made on this thread: it may load the model)."""
        super().__init__(parent)
        self.open_session = open_session
        self.session: LiveSession | None = None
        self.latest: np.ndarray | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            self.session = session = self.open_session(self.scored.emit)
            session.warm_up()
            for frame in session.frames():
                with self._lock:
                    self.latest = frame.image
                self.frame_ready.emit()
                if self.isInterruptionRequested():
                    session.stop.set()
        except FetalIqaError as error:
            self.failed.emit(str(error))
        except Exception as error:  # a bug: logged in full, said in one line
            log.exception("live session failed")
            self.failed.emit(f"The live session failed: {error}")
        if self.session is not None and self.session.summary is not None:
            self.ended.emit(self.session.summary)

    def newest(self) -> np.ndarray | None:
        with self._lock:
            frame, self.latest = self.latest, None
        return frame

    def mark_sweep(self) -> None:
        if self.session is not None:
            self.session.mark_sweep()
