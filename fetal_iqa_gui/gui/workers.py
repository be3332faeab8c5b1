"""Background threads: thin loops over the core, reporting through signals.

Opening a sweep, scoring it and exporting frames all run off the GUI thread. Scoring and exports
check `isInterruptionRequested()` between batches or frames: a cancel slot could not run while
their loop runs, and the window never waits for them (it drops a stopped thread's late signals).
The model's libraries (torch, open_clip: seconds to import) are imported by the scoring
thread when it first runs, so the window shows before them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QThread, Signal

from ..case.demo import demo_case_path
from ..base.errors import FetalIqaError
from ..model.spec import ModelSpec
from ..review.scored_case import ExportReport, ScoredCase
from ..runs.job import CaseJob
from ..engine.choice import EngineSettings
from ..case.case import Case
from ..case.loading import load_case

if TYPE_CHECKING:
    from ..engine.scoring import Engine

log = logging.getLogger(__name__)

_warm: dict[tuple, Engine] = {}  # models stay loaded between cases, per spec and settings
_warm_lock = threading.Lock()


def warm_engine(spec: ModelSpec, settings: EngineSettings, case: Case | None = None,
                notify: Callable[[str], None] | None = None) -> Engine:
    """The loaded engine; `case` (the one about to be scored) calibrates OpenVINO's int8 when it
    converts, and `notify` hears that it converts (minutes for the full model)."""
    from ..engine.scoring import load_engine
    key = (spec, settings)  # both frozen: equal choices, the same engine
    with _warm_lock:
        if key not in _warm:
            _warm.clear()  # one model in memory at a time: ViT-L is large
            _warm[key] = load_engine(spec, settings, notify, first_case=None if case is None else lambda: case)
        return _warm[key]


class HeatMapThread(QThread):
    """Computes one frame's heat map (and, the first time, makes the explainer: an fp32 copy of the
    model where the engine runs another precision, seconds for ViT-L) off the GUI thread."""

    done = Signal(object, object, object)  # the explainer, the (case key, frame) it explained, the HeatMap
    failed = Signal(str)

    def __init__(self, explainer, engine: Engine, key: tuple[str, int], pixels, parent=None):
        super().__init__(parent)
        self.explainer, self.engine, self.key, self.pixels = explainer, engine, key, pixels

    def run(self) -> None:
        from ..engine.explain import Explainer, fp32_module
        try:
            explainer = self.explainer or Explainer(fp32_module(self.engine))
            heat = explainer.heat_map(*self.key, self.pixels)
            heat.colours  # noqa: B018 (made here, not on the GUI thread)
        except FetalIqaError as error:
            self.failed.emit(f"No heat map: {error}")
            return
        except Exception as error:  # a bug: logged in full, told plainly, the window goes on
            log.exception("the heat map failed")
            self.failed.emit(f"No heat map: unexpected error ({error}). See the log.")
            return
        self.done.emit(explainer, self.key, heat)


class LoadThread(QThread):
    """Opens a sweep file, or (path None) the built-in demo sweep, made on first use."""

    loaded = Signal(object)  # Case
    failed = Signal(str)

    def __init__(self, path: Path | None, parent=None, demo_task: str | None = None):
        super().__init__(parent)
        self.path = path
        self.demo_task = demo_task  # the demo model the demo sweep is scored with (None: the settings')

    @property
    def is_demo(self) -> bool:
        return self.path is None

    def run(self) -> None:
        try:
            self.loaded.emit(load_case(demo_case_path() if self.path is None else self.path))  # None: the demo
        except FetalIqaError as error:
            self.failed.emit(str(error))
        except Exception as error:  # anything else is a bug: logged in full, told plainly
            log.exception("unexpected error opening %s", self.path or "the demo sweep")
            name = self.path.name if self.path else "the demo sweep"
            self.failed.emit(f"Cannot open '{name}': unexpected error ({error}). See the log.")


class ScoringThread(QThread):
    ready = Signal(object, object)  # Engine, ScoredCase: the model loaded, and what the cache held
    batch_ready = Signal(object, object)  # ScoreBatch, Throughput
    failed = Signal(str)
    notice = Signal(str)

    def __init__(self, case: Case, spec: ModelSpec, settings: EngineSettings, parent=None):
        super().__init__(parent)
        self.case, self.spec, self.settings = case, spec, settings

    def run(self) -> None:
        from ..engine.scoring import Throughput
        try:
            engine = warm_engine(self.spec, self.settings, self.case, self.notice.emit)
        except FetalIqaError as error:
            self.failed.emit(str(error))
            return
        except Exception as error:
            log.exception("unexpected error loading the model")
            self.failed.emit(f"The model could not be loaded: {error}. See the log.")
            return
        throughput = Throughput(0)

        def on_open(scored):
            throughput.total = scored.n_pending
            self.ready.emit(engine, scored.copy())  # the window's copy; the job keeps adding to its own

        def on_batch(batch, scored):
            throughput.add(len(batch.frames))
            if batch.notice:
                self.notice.emit(batch.notice)
            self.batch_ready.emit(batch, throughput)

        try:
            CaseJob(engine, self.case).run(on_open, on_batch, self.isInterruptionRequested)
        except FetalIqaError as error:
            self.failed.emit(f"{error} The scores so far are kept.")
        except Exception as error:
            log.exception("scoring failed")
            self.failed.emit(f"Scoring stopped: {error}. The scores so far are kept.")


class PrefetchThread(QThread):
    """Scores a case nobody looks at yet, into the score cache: the worklist's next case, while the
    user reviews this one. Stops after its batch when asked (the case on screen comes first)."""

    done = Signal(object, object)  # path, ScoredCase (None when it could not be scored)

    def __init__(self, path: Path, spec: ModelSpec, settings: EngineSettings, parent=None):
        super().__init__(parent)
        self.path, self.spec, self.settings = path, spec, settings

    def run(self) -> None:
        try:
            engine = warm_engine(self.spec, self.settings)
            scored = CaseJob(engine, self.path).run(should_stop=self.isInterruptionRequested).scored
        except Exception as error:  # the user will see it when opening the case; here it only costs the prefetch
            log.warning("could not score %s ahead: %s", self.path, error)
            scored = None
        self.done.emit(self.path, scored)


def explainer_for(engine):
    """The explainer an export's heat maps come from (None: none asked for, or a model that segments):
    made in the export's thread, an fp32 copy of the model can take seconds."""
    if engine is None or engine.model.is_segmentation:
        return None
    from ..engine.explain import Explainer, fp32_module
    return Explainer(fp32_module(engine))


class ExportThread(QThread):
    """Exports frames of a snapshot of the scored sweep (scoring may go on meanwhile)."""

    progress = Signal(int, int)  # done, total
    done = Signal(object, object)  # ExportReport, folder

    def __init__(self, scored: ScoredCase, frames: list[int], folder: Path, overlay: bool, rename: bool = False,
                 source_name_only: bool = False, blank: bool = False, parent=None, heat_maps_of=None):
        super().__init__(parent)
        self.scored, self.frames, self.folder, self.overlay, self.rename = scored, frames, folder, overlay, rename
        self.source_name_only, self.blank, self.heat_maps_of = source_name_only, blank, heat_maps_of

    def run(self) -> None:
        try:
            report = self.scored.export(self.frames, self.folder, self.overlay, rename=self.rename,
                                        should_stop=self.isInterruptionRequested, on_frame=self.progress.emit,
                                        source_name_only=self.source_name_only, blank=self.blank,
                                        explainer=explainer_for(self.heat_maps_of))
        except Exception as error:  # a bug: logged in full, told plainly, the window goes on
            log.exception("export failed")
            report = ExportReport(problems=[FetalIqaError(None, f"unexpected error ({error}); see the log")])
        self.done.emit(report, self.folder)


class ReportThread(QThread):
    """Writes the case report of a snapshot of the scored sweep: seconds of PNG encoding and
    writing that must not freeze the window."""

    done = Signal(object, object, object)  # the page (None if refused), the ExportReport, the folder

    def __init__(self, scored: ScoredCase, folder: Path, timeline_png: bytes, blank: bool = False, parent=None,
                 heat_maps_of=None):
        super().__init__(parent)
        self.scored, self.folder, self.timeline_png, self.blank = scored, folder, timeline_png, blank
        self.heat_maps_of = heat_maps_of

    def run(self) -> None:
        from ..review.report import write_report
        try:
            page, exported = write_report(self.scored, self.folder, self.timeline_png, blank=self.blank,
                                          explainer=explainer_for(self.heat_maps_of))
        except FetalIqaError as error:
            page, exported = None, ExportReport(problems=[error])
        except Exception as error:  # a bug: logged in full, told plainly, the window goes on
            log.exception("the report failed")
            page, exported = None, ExportReport(problems=[FetalIqaError(None, f"unexpected error ({error}); see the log")])
        self.done.emit(page, exported, self.folder)


class DicomThread(QThread):
    """Writes the DICOM outputs of a snapshot of the scored sweep (encoding and writing take seconds)."""

    done = Signal(object, object, object)  # DicomExport (None if refused), the error (None if written), the folder

    def __init__(self, scored: ScoredCase, folder: Path, variant: str, blank: bool = False, parent=None):
        super().__init__(parent)
        self.scored, self.folder, self.variant, self.blank = scored, folder, variant, blank

    def run(self) -> None:
        from ..review.dicom_out import write_dicom
        try:
            self.done.emit(write_dicom(self.scored, self.folder, self.variant, blank=self.blank, rename=True), None,
                           self.folder)
        except FetalIqaError as error:
            self.done.emit(None, error, self.folder)
        except Exception as error:  # a bug: logged in full, told plainly, the window goes on
            log.exception("the DICOM export failed")
            self.done.emit(None, FetalIqaError(None, f"unexpected error ({error}); see the log"), self.folder)


class EchoThread(QThread):
    """C-ECHO an archive (Settings' test button): a dead host takes seconds to say so."""

    answered = Signal(str)
    failed = Signal(str)

    def __init__(self, archive, parent=None):
        super().__init__(parent)
        self.archive = archive

    def run(self) -> None:
        from ..pacs.archive import echo
        try:
            seconds = echo(self.archive)
        except FetalIqaError as error:
            self.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - said in the dialog and logged, never a dead button
            log.exception("C-ECHO failed")
            self.failed.emit(f"The C-ECHO failed: {error}")
        else:
            self.answered.emit(f"{self.archive.describe()} answered in {seconds * 1000:.0f} ms.")


class PacsSendThread(QThread):
    """File > Send to PACS: the case's DICOM outputs queued (when `scored` is given), then the outbox
    sent (to `archive` only, when given), as `pacs.send`'s generator says; cancelled between files
    and during its waits by `cancel`, the send's own event."""

    step = Signal(object)  # pacs.send.Progress
    done = Signal(object, object)  # pacs.send.Tally, the error that stopped it before sending (else None)

    def __init__(self, outbox, archive, scored: ScoredCase | None, variant: str, blank: bool, retry_delays,
                 parent=None):
        super().__init__(parent)
        self.outbox, self.archive, self.scored, self.variant, self.blank = outbox, archive, scored, variant, blank
        self.retry_delays, self.cancel = retry_delays, threading.Event()

    def run(self) -> None:
        from ..pacs.case_send import queue_case
        from ..pacs.send import Tally, send_queued
        tally = Tally()
        try:
            if self.scored is not None:
                queue_case(self.scored, self.archive, self.outbox, self.variant, self.blank)
            for step in send_queued(self.outbox, self.archive, self.retry_delays, self.cancel):
                tally.add(step)
                self.step.emit(step)
        except FetalIqaError as error:
            self.done.emit(tally, error)
            return
        except Exception as error:  # a bug: logged in full, told plainly; the outbox keeps what it had
            log.exception("sending to the archive failed")
            self.done.emit(tally, FetalIqaError(None, f"unexpected error ({error}); see the log"))
            return
        self.done.emit(tally, None)


class ListenThread(QThread):
    """Settings' "receive from the scanner": the C-STORE receiver (`pacs.listen`) runs while the window
    is open, until `stop()`; each of its events is said as (kind, message, the series folders)."""

    said = Signal(str, str, list)  # not `event`: that is QObject's event handler
    failed = Signal(str)

    def __init__(self, into: Path, port: int, allowed: tuple[str, ...], ae_title: str, parent=None):
        super().__init__(parent)
        self.into, self.port, self.allowed, self.ae_title = into, port, allowed, ae_title
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        from ..pacs.listen import listen
        try:
            for event in listen(self.into, self.port, self.allowed, self.ae_title, stop=self.stopping):
                self.said.emit(event.kind, event.message, [str(folder) for folder in event.folders])
        except PermissionError:
            self.failed.emit(f"Port {self.port} needs administrator rights (ports below 1024 do): choose 11112 or "
                             "another above 1024 in Settings, and tell the scanner.")
        except FetalIqaError as error:
            self.failed.emit(str(error))
        except OSError as error:
            self.failed.emit(f"Cannot listen on port {self.port} ({error.strerror or error}): another receiver "
                             "(`fetal-iqa listen`, another window) may have it. Choose another port in Settings.")
        except Exception as error:  # noqa: BLE001 - said in the window and logged, never a dead receiver unsaid
            log.exception("the receiver failed")
            self.failed.emit(f"The receiver stopped: {error}")
