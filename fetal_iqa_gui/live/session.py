"""A live session: frames from a source, each recorded as it arrives, the newest scored whenever the
engine is free. Latest frame wins: the scorer never works through a queue, so its score is never
older than one scoring pass, and the frames (display, recording) never wait for it.

`LiveSession.frames()` is the front doors' loop: it yields every frame as the source delivers it; the
scores come from the session's scoring thread (`new_scores()`, or `on_score` as each comes).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .recording import Recording
from .source import LiveFrame, LiveSource

log = logging.getLogger(__name__)

BEST_KEPT = 6  # the best frames of the current sweep that a front door shows


@dataclass
class LiveScore:
    frame: int  # the frame's index in the recording
    score: float
    good: bool
    arrived: float  # time.monotonic() of the frame's arrival
    scored: float  # ... and of its score
    image: np.ndarray = field(repr=False)  # the frame scored (the best frames' thumbnails)

    @property
    def delay_s(self) -> float:
        """From the frame's arrival to its score: what the user waits for the cue."""
        return self.scored - self.arrived


class LatestFrame:
    """A one-frame mailbox: a new frame replaces one not yet taken (counted as skipped)."""

    def __init__(self):
        self._ready = threading.Condition()
        self._frame: LiveFrame | None = None
        self._closed = False
        self.skipped = 0

    def put(self, frame: LiveFrame) -> None:
        with self._ready:
            self.skipped += self._frame is not None
            self._frame = frame
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()

    def take(self) -> LiveFrame | None:
        """The newest frame not yet taken, waiting for one; None once closed with none left."""
        with self._ready:
            self._ready.wait_for(lambda: self._frame is not None or self._closed)
            frame, self._frame = self._frame, None
            return frame


def score_latest(predict: Callable[[np.ndarray], np.ndarray], mailbox: LatestFrame,
                 threshold: float) -> Iterator[LiveScore]:
    """Score the newest frame, again and again, until the mailbox closes. `predict`: (n, h, w) uint8 ->
    n scores, as `Engine.predict` scores a case's frames (the same preprocessing: engine/preprocess.py)."""
    while (frame := mailbox.take()) is not None:
        score = float(np.asarray(predict(frame.image[None]))[0])
        yield LiveScore(frame.index, score, score >= threshold, frame.arrived, time.monotonic(), frame.image)


@dataclass
class LiveSummary:
    frames: int  # recorded from the source (sweep marks' blank frames not counted)
    scored: int
    good: int
    seconds: float
    dropped: int  # a camera's frames that never came (gaps in its timing); a file drops none
    delays_s: np.ndarray  # arrival to score, per scored frame
    ended: str
    unplugged: bool
    recording: object = None  # the case file's Path, None when not recording or nothing came

    @property
    def scored_fraction(self) -> float:
        return self.scored / self.frames if self.frames else 0.0

    @property
    def frame_rate(self) -> float:
        return (self.frames - 1) / self.seconds if self.frames > 1 and self.seconds > 0 else 0.0


class LiveSession:
    """One source, one engine, one optional recording. Run `frames()` on one thread; `mark_sweep` and
    `best_frames` may be called from any."""

    def __init__(self, source: LiveSource, predict: Callable[[np.ndarray], np.ndarray], threshold: float,
                 recording: Recording | None = None, on_score: Callable[[LiveScore], None] | None = None):
        self.source = source
        self.predict = predict
        self.threshold = threshold
        self.recording = recording
        self.on_score = on_score
        self.scores: list[LiveScore] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._taken = 0  # scores handed out by new_scores()
        self._best: list[tuple[float, int, np.ndarray]] = []  # (score, frame, image) of the current sweep
        self._arrivals: list[float] = []
        self._error: BaseException | None = None
        self._mark_next = False
        self.summary: LiveSummary | None = None  # once frames() has ended

    def frames(self) -> Iterator[LiveFrame]:
        """Every frame as it arrives, recorded first; the scorer runs meanwhile. Ends with the source,
        with `stop`, or with an error (the scorer's raised here); the recording is finished in every case."""
        mailbox = LatestFrame()
        scorer = threading.Thread(target=self._score, args=(mailbox,), name="live-scorer", daemon=True)
        scorer.start()
        self.summary = None
        try:
            for frame in self.source.frames(self.stop):
                if self._mark_next and self.recording is not None:
                    self.recording.mark_sweep()
                    self._new_sweep()
                self._mark_next = False
                if self.recording is not None:
                    frame.index = self.recording.n_frames  # its index in the case the recording becomes
                    self.recording.append(frame)
                mailbox.put(frame)
                self._arrivals.append(frame.arrived)
                if self._error is not None:
                    raise self._error
                yield frame
        finally:
            self.stop.set()
            mailbox.close()
            scorer.join()
            path = self.recording.finish() if self.recording is not None else None
            self.summary = self._summarise(path)
        if self._error is not None:
            raise self._error

    def warm_up(self) -> None:
        """One pass on a blank frame first: the first real frame's delay is then the engine's, not its start-up's."""
        self.predict(np.zeros((1, 224, 224), np.uint8))

    def mark_sweep(self) -> None:
        """The next frame starts a new sweep (in the recording's layout, and the best frames start over)."""
        self._mark_next = True
        if self.recording is None:
            self._new_sweep()

    def _new_sweep(self) -> None:
        with self._lock:
            self._best = []

    def new_scores(self) -> list[LiveScore]:
        """The scores that came since the last call."""
        with self._lock:
            fresh, self._taken = self.scores[self._taken:], len(self.scores)
        return fresh

    def best_frames(self) -> list[tuple[float, int, np.ndarray]]:
        """(score, frame index, image) of the current sweep's best scored frames, best first."""
        with self._lock:
            return list(self._best)

    def _score(self, mailbox: LatestFrame) -> None:
        try:
            for result in score_latest(self.predict, mailbox, self.threshold):
                with self._lock:
                    self.scores.append(result)
                    self._best = sorted([*self._best, (result.score, result.frame, result.image)],
                                        key=lambda kept: -kept[0])[:BEST_KEPT]
                if self.on_score is not None:
                    self.on_score(result)
        except BaseException as error:  # said on the reading thread, which ends the session
            log.exception("live scoring failed")
            self._error = error
            self.stop.set()
            mailbox.close()

    def _summarise(self, path) -> LiveSummary:
        arrivals = np.asarray(self._arrivals)
        gaps = np.diff(arrivals)
        dropped = 0
        if self.source.is_camera and self.source.frame_rate and len(gaps):
            dropped = int(np.maximum(np.rint(gaps * self.source.frame_rate) - 1, 0).sum())
        with self._lock:
            scores = list(self.scores)
        return LiveSummary(len(arrivals), len(scores), sum(s.good for s in scores),
                           float(arrivals[-1] - arrivals[0]) if len(arrivals) else 0.0, dropped,
                           np.array([s.delay_s for s in scores]), self.source.ended, self.source.unplugged, path)
