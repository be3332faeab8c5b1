"""The worklist: a folder's cases with their state and best score. Selecting one opens it; the next
unscored case is scored ahead while the user reviews; "reviewed" keeps the review beside the sweeps
(a save that fails is said, and its rows marked "not saved" until a later save succeeds). What the
review file could not give (damaged, set aside; entries left out) is said when found. A case that
appears in the folder while it is open (a series `fetal-iqa listen` received: it renames each into
the folder whole) joins the list, and is scored ahead like the others."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QFileDialog, QListWidget, QListWidgetItem

from ..base.errors import WriteError
from ..case.study import entered_study
from ..runs.worklist import NOT_SCORED, REVIEWED, SCORED, SCORING, Worklist, restore_calipers
from .session import ScoringSession
from .state import ViewerState

RESCAN_DELAY_MS = 300  # a burst of changes (several series moved in) is read once
POLL_MS = 5000  # where the folder cannot be watched (some network shares), it is listed this often
MARKS = {NOT_SCORED: "○", SCORING: "◔", SCORED: "●", REVIEWED: "✔"}
COLOURS = {NOT_SCORED: "#9a9a9a", SCORING: "#4aa3ff", SCORED: "#e6e6e6", REVIEWED: "#2ecc71"}


class WorklistPanel(QListWidget):
    status = Signal(str)
    alert = Signal(str, str)  # title, message

    def __init__(self, state: ViewerState, session: ScoringSession, parent=None):
        super().__init__(parent)
        self.viewer_state, self.session = state, session  # not `state`: QAbstractItemView.state() is Qt's
        self.worklist: Worklist | None = None
        self.setAccessibleName("Worklist")
        self.setToolTip("The cases of the open folder: ○ not scored, ◔ scoring, ● scored, ✔ reviewed. "
                        "Ctrl+PgDown / Ctrl+PgUp: next / previous case.")
        self.setMinimumWidth(200)
        self.hide()  # until a folder is opened
        self.itemActivated.connect(lambda item: self.open_case(self.row(item)))
        self.itemClicked.connect(lambda item: self.open_case(self.row(item)))
        session.opened.connect(self._on_opened)
        session.scoring_changed.connect(self._on_scoring_changed)
        session.prefetched.connect(self._on_prefetched)
        state.model_changed.connect(self._restore_review)
        self.watcher = QFileSystemWatcher(self)
        self.rescan_timer = QTimer(self, singleShot=True, interval=RESCAN_DELAY_MS)
        self.watcher.directoryChanged.connect(lambda _path: self.rescan_timer.start())
        self.rescan_timer.timeout.connect(self.rescan)
        self.poll_timer = QTimer(self, interval=POLL_MS)
        self.poll_timer.timeout.connect(self.rescan)

    @property
    def open_worklist(self) -> Worklist:
        """`worklist` where a folder is open for sure (one of its cases is on screen, or it was just loaded)."""
        assert self.worklist is not None, "no folder is open"
        return self.worklist

    # -- the actions ---------------------------------------------------------------------------

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of sweeps")
        if folder:
            self.load(Path(folder))

    def load(self, folder: Path) -> None:
        self.worklist = Worklist(folder)
        self._watch(folder)
        self._tell_notices()
        self.clear()
        for _ in self.worklist.cases:
            self.addItem(QListWidgetItem())
        self.refresh()
        self.show()
        if not self.worklist.cases:
            self.status.emit(f"No sweep files in {folder} yet: each case that arrives there shows in the worklist.")
            return
        self.open_case(0)

    def rescan(self) -> None:
        """Add the cases that appeared in the folder; score them ahead if the worklist is doing so."""
        if self.worklist is None:
            return
        added = self.worklist.rescan()
        if not added:
            return
        for _ in added:
            self.addItem(QListWidgetItem())
        self.refresh()
        self.status.emit(f"New in the worklist: {', '.join(entry.name for entry in added)}.")
        row = self._current_row()
        if self.viewer_state.case is None:
            self.open_case(len(self.worklist.cases) - len(added))
        elif row is not None and not self.session.is_scoring and self.viewer_state.model is not None:
            self._score_ahead(row)

    def _watch(self, folder: Path) -> None:
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        self.poll_timer.stop()
        if not self.watcher.addPath(str(folder)):
            self.poll_timer.start()

    def next_case(self) -> None:
        self._step(1)

    def previous_case(self) -> None:
        self._step(-1)

    def mark_reviewed(self) -> None:
        row, scored = self._current_row(), self.viewer_state.scored
        if row is None or scored is None or self.viewer_state.model is None:
            self.status.emit("Open a case of a folder (File > Open folder) and let it score to mark it reviewed.")
            return
        worklist = self.open_worklist
        name = worklist.cases[row].name
        if self._save(lambda: worklist.mark_reviewed(worklist.cases[row].path, scored),
                      f"{name} is marked reviewed in this window", alert=True):
            self.status.emit(f"{name} is reviewed; kept in {worklist.review_file}.")

    def _save(self, change, done: str, alert: bool) -> bool:
        """Make a change that saves the review file; a failed save is said (an alert the first time,
        or when the user asked to save) and the change stays in memory for the next save."""
        first_failure = self.open_worklist.saved
        try:
            change()
        except WriteError as error:
            message = (f"{done}, but the review file could not be saved: {error} It is kept in this "
                       "window, and the next save tries again.")
            self.status.emit(message)
            if alert or first_failure:
                self.alert.emit("Review not saved", message)
            return False
        finally:
            self.refresh()
        self._tell_notices()
        return True

    def _tell_notices(self) -> None:
        """In the status bar and an alert: the core has logged them already."""
        notices = self.open_worklist.take_notices()
        if notices:
            message = "\n\n".join(notices)
            self.status.emit(notices[-1])
            self.alert.emit("The folder's review file", message)

    # -- keeping in step -----------------------------------------------------------------------

    def open_case(self, row: int) -> None:
        if not (self.worklist and 0 <= row < len(self.worklist.cases)):
            return
        if row != self._current_row():
            self.session.open(self.worklist.cases[row].path)
        elif not self.session.is_scoring:  # the case on screen already: what it has is its state
            self.setCurrentRow(row)
            self._on_scoring_changed(False)

    def _step(self, direction: int) -> None:
        row = self._current_row()
        if self.worklist is None:
            self.status.emit("No worklist: File > Open folder… first.")
        elif row is not None:
            self.open_case(min(max(row + direction, 0), len(self.worklist.cases) - 1))

    def _current_row(self) -> int | None:
        case = self.viewer_state.case
        if self.worklist is None or case is None:
            return None
        return self.worklist.index_of(case.source)

    def _on_opened(self, case) -> None:
        row = self._current_row()
        if row is not None:
            # another sweep under a reviewed name is not reviewed
            entry = self.open_worklist.opened(case.source, case.content_hash)
            study = entered_study(entry.review.get("patient"), case.content_hash)
            if study is not None and not case.study.from_dicom:
                self.viewer_state.set_study(study)  # the details typed for it when it was reviewed
            self.setCurrentRow(row)
            if self.open_worklist.cases[row].state == NOT_SCORED:
                self.open_worklist.cases[row].state = SCORING
            self.refresh()

    def _restore_review(self) -> None:
        row = self._current_row()
        if row is not None and self.open_worklist.cases[row].review and not self.viewer_state.open_scored.calipers:
            restore_calipers(self.viewer_state.open_scored, self.open_worklist.cases[row].review)
            self.viewer_state.calipers_changed.emit(self.viewer_state.frame)

    def _on_scoring_changed(self, scoring: bool) -> None:
        row, scored = self._current_row(), self.viewer_state.scored
        if scoring or row is None or scored is None or self.viewer_state.model is None:
            return
        worklist = self.open_worklist
        entry = worklist.cases[row]
        self._save(lambda: worklist.scored(entry.path, scored), f"{entry.name} is scored", alert=False)
        if entry.state == SCORING:
            entry.state = NOT_SCORED  # stopped part way: it scores again when opened
        self.refresh()
        self._score_ahead(row)

    def _score_ahead(self, row: int) -> None:
        ahead = self.open_worklist.next_to_score(row)
        if ahead is not None and self.viewer_state.open_scored.n_pending == 0:
            self.session.prefetch(ahead.path)
            self.status.emit(f"Scoring {ahead.name} ahead, while you review this case.")

    def _on_prefetched(self, path: Path, scored) -> None:
        worklist = self.worklist
        row = worklist.index_of(path) if worklist is not None else None
        if worklist is None or row is None or scored is None:
            return
        name = worklist.cases[row].name
        self._save(lambda: worklist.scored(path, scored), f"{name} is scored", alert=False)
        if not self.session.is_scoring:
            self._on_scoring_changed(False)  # and the one after it

    def refresh(self) -> None:
        worklist = self.open_worklist
        for row, entry in enumerate(worklist.cases):
            best = "" if entry.best_score is None else f"  {entry.best_score:.2f}"
            unsaved = "" if worklist.saved or entry.state not in (SCORED, REVIEWED) else " (not saved)"
            item = self.item(row)
            item.setText(f"{MARKS[entry.state]} {entry.name}{best}{unsaved}")
            item.setToolTip(f"{entry.path}: {entry.state}"
                            + (f"; not yet saved in {worklist.review_file}" if unsaved else ""))
            item.setData(Qt.ItemDataRole.UserRole, str(entry.path))
            item.setForeground(QBrush(QColor(COLOURS[entry.state])))
