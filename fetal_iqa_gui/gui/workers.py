"""Background threads: thin loops over the core, reporting through signals.

Loading a sweep and scoring it both run off the GUI thread. The scoring thread checks
`isInterruptionRequested()` between batches (a cancel slot could not run while its loop runs).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QThread, Signal

from ..batch import cached_scores, score_all
from ..fileio import ExportError
from ..model.loading import ModelSpec, load_model
from ..model.tower import ModelLoadError
from ..scoring import Engine, EngineSettings, Throughput, make_engine
from ..sweep import SweepLoadError, load_sweep

log = logging.getLogger(__name__)

_warm: dict[tuple, Engine] = {}  # models stay loaded between sweeps, per spec and settings
_warm_lock = threading.Lock()


def warm_engine(spec: ModelSpec, settings: EngineSettings) -> Engine:
    key = (spec, settings.device, settings.precision, settings.batch_size, settings.threads)
    with _warm_lock:
        if key not in _warm:
            _warm.clear()  # one model in memory at a time: ViT-L is large
            _warm[key] = make_engine(load_model(spec), settings)
        return _warm[key]


class LoadThread(QThread):
    """Opens a sweep; `source` is a path, or a function that makes one (the demo sweep)."""

    loaded = Signal(object)  # Sweep
    failed = Signal(str)

    def __init__(self, source, parent=None):
        super().__init__(parent)
        self.source = source
        self.path = Path(source) if not callable(source) else Path("demo sweep")

    def run(self) -> None:
        try:
            if callable(self.source):
                self.path = self.source()
            self.loaded.emit(load_sweep(self.path))
        except (SweepLoadError, ExportError) as error:  # ExportError: the demo sweep could not be written
            self.failed.emit(str(error))
        except Exception as error:  # anything else is a bug: logged in full, told plainly
            log.exception("unexpected error opening %s", self.path)
            self.failed.emit(f"Cannot open '{self.path.name}': unexpected error ({error}). See the log.")


class ScoringThread(QThread):
    model_ready = Signal(object)  # Engine
    cached = Signal(object)  # SweepScores from the cache
    batch_ready = Signal(object, object)  # ScoreBatch, Throughput
    failed = Signal(str)
    notice = Signal(str)

    def __init__(self, sweep, spec: ModelSpec, settings: EngineSettings, parent=None):
        super().__init__(parent)
        self.sweep, self.spec, self.settings = sweep, spec, settings

    def run(self) -> None:
        try:
            engine = warm_engine(self.spec, self.settings)
        except (ModelLoadError, RuntimeError) as error:
            self.failed.emit(str(error))
            return
        except Exception as error:
            log.exception("unexpected error loading the model")
            self.failed.emit(f"The model could not be loaded: {error}. See the log.")
            return
        self.model_ready.emit(engine)
        found = cached_scores(self.sweep, engine.model.identity, engine.model.is_segmentation)
        if found is not None:
            self.cached.emit(found)
        already = 0 if found is None else int(np.count_nonzero(~np.isnan(found.scores)))
        pending = self.sweep.layout.n_images - already
        throughput = Throughput(max(pending, 0))

        def on_batch(batch):
            throughput.add(len(batch.frames))
            if batch.notice:
                self.notice.emit(batch.notice)
            self.batch_ready.emit(batch, throughput)

        try:
            score_all(engine, self.sweep, True, on_batch, self.isInterruptionRequested)
        except Exception as error:
            log.exception("scoring failed")
            self.failed.emit(f"Scoring stopped: {error}. The scores so far are kept.")
