"""Undo and redo for the measurements kept on a case's frames: each change (keep, edit, delete)
records the frame's measurements before and after it, so undoing puts the frame back as it was.
Qt-free: the window's state applies it and says what changed."""

from __future__ import annotations

from dataclasses import dataclass

from .scored_case import ScoredCase

HISTORY_LIMIT = 200  # changes remembered; a review never comes near, a long session cannot grow without end


@dataclass(frozen=True)
class MeasurementChange:
    frame: int
    before: tuple  # the frame's calipers before the change
    after: tuple
    what: str  # for the user: "keep AC 1", "delete distance 2"


class MeasurementHistory:
    def __init__(self):
        self._done: list[MeasurementChange] = []
        self._undone: list[MeasurementChange] = []

    @property
    def next_undo(self) -> MeasurementChange | None:
        return self._done[-1] if self._done else None

    @property
    def next_redo(self) -> MeasurementChange | None:
        return self._undone[-1] if self._undone else None

    def change(self, scored: ScoredCase, frame: int, calipers: list, what: str) -> MeasurementChange:
        """Set the frame's calipers, remembering what they were; a new change forgets what was undone."""
        change = MeasurementChange(frame, tuple(scored.calipers.get(frame, ())), tuple(calipers), what)
        scored.set_calipers(frame, list(calipers))
        self._done = self._done[-(HISTORY_LIMIT - 1):] + [change]
        self._undone.clear()
        return change

    def undo(self, scored: ScoredCase) -> MeasurementChange | None:
        return self._step(self._done, self._undone, scored, lambda change: change.before)

    def redo(self, scored: ScoredCase) -> MeasurementChange | None:
        return self._step(self._undone, self._done, scored, lambda change: change.after)

    @staticmethod
    def _step(source: list, target: list, scored: ScoredCase, calipers_of) -> MeasurementChange | None:
        """The newest change of `source` applied (its calipers before, or after) and moved to `target`."""
        if not source:
            return None
        change = source.pop()
        scored.set_calipers(change.frame, list(calipers_of(change)))
        target.append(change)
        return change

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
