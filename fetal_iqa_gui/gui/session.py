"""Opening and scoring sweeps off the GUI thread, without ever waiting for a thread on it.

A cancel only asks the scoring thread to stop after its batch; a new sweep or new settings start
their scoring once the old thread has finished. Signals of threads that no longer match the sweep
on screen are dropped, so a late batch never lands on the wrong sweep.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal

from ..model.spec import ModelSpec, choose_model
from ..engine.choice import EngineSettings
from ..engine.cpu import default_threads
from ..case.loading import SUPPORTED_DESCRIPTION
from . import settings as stored
from .state import ViewerState
from .workers import LoadThread, PrefetchThread, ScoringThread

if TYPE_CHECKING:
    from ..engine.scoring import Engine

log = logging.getLogger(__name__)


class ScoringSession(QObject):
    status = Signal(str)  # a line for the status bar
    progress = Signal(int, int)  # done, total; total 0: busy without a measure; total -1: idle
    alert = Signal(str, str)  # title, message: something the user must see
    opened = Signal(object)  # the Case now on screen
    scoring_changed = Signal(bool)  # whether a scoring thread is running
    prefetched = Signal(object, object)  # path, ScoredCase or None: a case scored ahead

    def __init__(self, state: ViewerState, settings: stored.AppSettings, parent=None):
        super().__init__(parent)
        self.state = state
        self.settings = settings
        self.demo_mode = False  # the demo sweep always runs a demo model, whatever the settings say
        self.demo_task: str | None = None  # which demo model it runs (None: the one in the settings)
        self.engine: Engine | None = None
        self.loader: LoadThread | None = None
        self.scorer: ScoringThread | None = None
        self.prefetcher: PrefetchThread | None = None
        self._start_when_idle = False
        self._closed = False  # after shutdown nothing starts: a thread would outlive the app
        self._threads: set[QThread] = set()  # every thread still running, for a clean close

    # -- opening -----------------------------------------------------------------------------

    def open(self, path: Path | None, demo_task: str | None = None) -> None:
        """Open a sweep file, or (None) the demo sweep with the demo model of `demo_task`; the sweep
        on screen stays until it is loaded."""
        self.loader = LoadThread(path, self, demo_task)
        self.loader.loaded.connect(partial(self._on_loaded, self.loader))
        self.loader.failed.connect(partial(self._on_load_failed, self.loader))
        self.status.emit(f"Opening {path.name if path else 'the demo sweep'}…")
        self.progress.emit(0, 0)
        self._run(self.loader)

    def _on_loaded(self, loader: LoadThread, case) -> None:
        if loader is not self.loader or self._closed:
            return  # the user opened something else meanwhile, or closed the window
        self.demo_mode, self.demo_task = loader.is_demo, loader.demo_task
        if case.source.exists() and not loader.is_demo:
            stored.add_recent_file(str(case.source))  # before `opened`: Open Recent is rebuilt on it
        self.state.set_case(case)
        self.opened.emit(case)
        self.rescore()

    def _on_load_failed(self, loader: LoadThread, message: str) -> None:
        if loader is not self.loader:
            return
        log.warning(message)
        self.progress.emit(0, -1)
        self.status.emit(message)
        if loader.is_demo:
            self.alert.emit("Cannot open the demo sweep", message)
        else:
            self.alert.emit("Cannot open the file", f"{message}\n\nSupported: {SUPPORTED_DESCRIPTION}.")

    # -- scoring -----------------------------------------------------------------------------

    def model_spec(self) -> ModelSpec:
        """The demo sweep runs its demo model; anything else the model the settings name, by the rule
        the CLI follows too (model/spec.py: the user model folder's adapter before the demo model)."""
        s = self.settings
        if self.demo_mode:
            return ModelSpec.demo_model(self.demo_task or s.demo_task)
        return choose_model(weights=s.weights or None, config=s.config or None, adapter=s.adapter or None,
                            fallback_demo=s.demo_task)

    def engine_settings(self) -> EngineSettings:
        return self.settings.engine(threads=default_threads(for_window=True))

    @property
    def is_scoring(self) -> bool:
        # a thread counts until its `finished` has been handled here, not by isRunning(): a queued
        # finished may arrive after isRunning() turned false, and nothing would start the next scoring
        return any(thread is not None and thread in self._threads for thread in (self.scorer, self.prefetcher))

    def prefetch(self, path: Path) -> None:
        """Score a case ahead, into the cache, while nothing else scores."""
        if self.is_scoring or self.state.case is None:
            return
        self.prefetcher = PrefetchThread(path, self.model_spec(), self.engine_settings(), self)
        self.prefetcher.done.connect(self.prefetched)
        self._run(self.prefetcher)

    def rescore(self) -> None:
        """Score the sweep on screen with the current settings, once any earlier scoring has stopped."""
        if self.state.case is None:
            return
        if self.is_scoring:
            self._start_when_idle = True
            self.cancel(quiet=True)
            self.status.emit("Stopping the previous scoring…")
            return
        self._start_when_idle = False
        self.scorer = ScoringThread(self.state.case, self.model_spec(), self.engine_settings(), self)
        self.scorer.ready.connect(partial(self._on_ready, self.scorer))
        self.scorer.batch_ready.connect(partial(self._on_batch, self.scorer))
        self.scorer.failed.connect(partial(self._on_failed, self.scorer))
        self.scorer.notice.connect(partial(self._on_notice, self.scorer))
        self.status.emit("Loading the model…")
        self.progress.emit(0, 0)
        self._run(self.scorer)
        self.scoring_changed.emit(True)

    def cancel(self, quiet: bool = False) -> None:
        """Ask scoring (and scoring ahead) to stop after the current batch; never waits."""
        if self.prefetcher is not None:
            self.prefetcher.requestInterruption()
        if self.scorer in self._threads and not self.scorer.isInterruptionRequested():
            self.scorer.requestInterruption()
            if not quiet:
                self.status.emit("Stopping after the current batch…")

    def _current(self, thread: ScoringThread) -> bool:
        return thread is self.scorer and thread.case is self.state.case and not self._start_when_idle

    def _on_ready(self, thread: ScoringThread, engine, scored) -> None:
        if not self._current(thread):
            return
        self.engine = engine
        previous = self.state.model
        threshold: float | None
        if previous is not None and previous.identity == scored.model.identity:
            threshold = self.state.threshold  # the same model on another device: the user's threshold stays
        else:
            threshold = self.settings.default_threshold(scored.model.task)  # never another kind's
        self.state.set_scored(scored, threshold)
        self.progress.emit(scored.n_scored, self.state.open_case.layout.n_images)

    def _on_batch(self, thread: ScoringThread, batch, throughput) -> None:
        if not self._current(thread):
            return
        self.state.add_scores(batch.frames, batch.scores, batch.masks)
        done, images = self.state.scored_count, self.state.open_case.layout.n_images
        self.progress.emit(done, images)
        if thread.isInterruptionRequested():
            return  # "Stopping…" stays until the thread has finished
        left = throughput.seconds_left
        engine = self.engine
        assert engine is not None  # set when the scorer was ready, before its first batch
        # what runs last: the line cuts it first on a narrow window (its tooltip has it whole)
        self.status.emit(f"{engine.model.name} | scored {done}/{images} | {throughput.frames_per_second:.1f} frames/s"
                         + (f" | {left:.0f} s left" if left else "") + f" | {self._engine_said()}")

    def _engine_said(self) -> str:
        """What scores the open case, as the user is shown it: its view names the patches it skips. The
        view of the scored case only, which its job made before it opened it: nothing is checked here."""
        engine, scored = self.engine, self.state.scored
        assert engine is not None
        return (engine.for_case(scored.case) if scored is not None else engine).description

    def _on_failed(self, thread: ScoringThread, message: str) -> None:
        if thread is not self.scorer:
            return
        log.warning(message)
        self.status.emit(message)
        self.alert.emit("Scoring", message)

    def _on_notice(self, thread: ScoringThread, text: str) -> None:
        if self._current(thread):
            self.status.emit(text)

    def _finished(self, thread: QThread) -> None:
        self._threads.discard(thread)
        if thread is self.prefetcher and self._start_when_idle:
            self.rescore()
        if thread is not self.scorer:
            return
        self.scoring_changed.emit(False)
        if self._start_when_idle:
            self.rescore()
            return
        self.progress.emit(0, -1)
        if self.state.scored is None or self.state.model is None or self.engine is None:
            return
        scored = self.state.scored
        images = scored.case.layout.n_images
        summary = f"{self.engine.model.name} | scored {scored.n_scored}/{images}"
        if scored.n_scored < images:
            summary += " (stopped: the scores so far are kept)"
        best = scored.best_frame()
        if best:
            summary += f" | best frame {best.frame} ({best.score:.3f})"
        self.status.emit(f"{summary} | {self._engine_said()}")

    # -- threads -----------------------------------------------------------------------------

    def _run(self, thread: QThread) -> None:
        self._threads.add(thread)
        thread.finished.connect(partial(self._finished, thread))
        thread.start()

    def shutdown(self) -> None:
        """The window is closing: stop everything, and wait (at most a batch) so no thread outlives it."""
        self._closed = True
        self._start_when_idle = False
        for thread in list(self._threads):
            thread.requestInterruption()
        for thread in list(self._threads):
            thread.wait()
