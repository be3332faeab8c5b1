"""`fetal-iqa live`: score a scanner's video (or a file played as one) while it is recorded."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..base.text import shown
from .helptext import add_command
from .options import add_engine_options, add_model_options, positive_float
from .score import EXIT_ERROR, EXIT_OK, say

BELL = "\a"


def add_live_command(commands) -> None:
    live = add_command(
        commands, "live", "score a live video (a capture device, a video file) while recording it",
        "Score the frames of a live source as they come: a camera index (a USB HDMI/SDI grabber on the scanner's "
        "video output is one), a video file or a folder of pictures (played at its own frame rate). The newest "
        "frame is scored whenever the model is free; a line per scored frame, and a bell when a frame reaches the "
        "threshold. With --record every frame goes to disk as it arrives and becomes an ordinary case when the "
        "session ends (end of file, --seconds, Ctrl+C or SIGTERM); a source that stops delivering keeps what was "
        "recorded. Press Enter to mark the start of the next sweep.",
        (("a synthetic case's video, recorded as a case, by the demo model",
          "live sweep.mkv --model demo --record live.mha"),
         ("the first capture device, the ultrasound image only, for two minutes",
          "live 0 --region 120,80,744,562 --record exam.mha --seconds 120"),
         ("the same, the image region found by itself (what changes on the screen)",
          "live 0 --region auto --record exam.mha")))
    live.add_argument("source", metavar="SOURCE",
                      help="a camera index (0, 1...), a video file, or a folder of pictures")
    live.add_argument("--region", type=_region, metavar="X,Y,W,H",
                      help="the ultrasound image on the frame, in pixels, or 'auto': the largest region that "
                      "changes over the first second (default: the whole frame)")
    live.add_argument("--record", type=Path, metavar="FILE.mha",
                      help="record every frame, with its time, as a case file (default: none)")
    live.add_argument("--force", action="store_true", help="replace an existing recording")
    live.add_argument("--spacing", type=positive_float, metavar="MM",
                      help="mm per pixel of the image, from the scanner's depth scale (default: unknown, as the "
                      "recording then says)")
    live.add_argument("--seconds", type=positive_float, metavar="N", help="stop after N seconds (default: at the end)")
    live.add_argument("--rate", type=positive_float, default=30.0, metavar="FPS",
                      help="frames per second of a picture folder, which states none")
    add_model_options(live, threshold=True)
    add_engine_options(live)
    live.set_defaults(handler=cmd_live)


def _region(text: str):
    from ..live.source import Region
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return Region.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_live(args) -> int:
    from ..live.recording import Recording
    from ..live.session import LiveSession
    from ..live.source import open_source
    from .options import load_engine
    source = open_source(args.source, None if args.region == "auto" else args.region, args.rate)
    if args.region == "auto":
        say(f"live: the image region found: {source.find_region()} (x,y,width,height; --region gives it)")
    recording = (Recording(args.record, source.name, source.frame_rate, source.region, args.spacing, args.force)
                 if args.record else None)  # refused (a name taken) before the model loads
    session = None
    try:
        engine = load_engine(args)
        threshold = engine.model.threshold if args.threshold is None else args.threshold
        session = LiveSession(source, lambda frames: engine.predict(frames)[0], threshold, recording)
        session.warm_up()
        say(f"live: {shown(source.name)} [{engine.description}], threshold {threshold:.3f}"
            + (f", recording to {shown(str(args.record))}" if recording else "")
            + ("; Enter marks the next sweep, Ctrl+C ends" if sys.stdin.isatty() else "; Ctrl+C ends"))
        if sys.stdin.isatty():
            threading.Thread(target=_marks_from_keyboard, args=(session,), daemon=True).start()
        _run(session, args.seconds)
    finally:
        if session is not None and session.summary is not None:
            say(describe(session.summary))
        else:  # ended before the first frame: nothing to keep
            source.capture.release()
            if recording is not None:
                recording.finish()
    assert session is not None and session.summary is not None  # `frames()` ended, and summarised
    if session.summary.unplugged:
        say(f"error: {shown(source.name)}: {source.ended}; "
            + (f"what came is recorded in {shown(str(session.summary.recording))}" if session.summary.recording
               else "nothing was recorded"))
        return EXIT_ERROR
    return EXIT_OK


def _run(session, seconds: float | None) -> None:
    """A line per score as the frames come, a bell where the scores reach the threshold."""
    frames = session.frames()
    started, was_good = time.monotonic(), False
    try:
        for _ in frames:
            for result in session.new_scores():
                print(_line(result, session, started), flush=True)
                if result.good and not was_good:
                    print(f"{BELL}GOOD: frame {result.frame} reached the threshold ({result.score:.3f})", flush=True)
                was_good = result.good
            if seconds and time.monotonic() - started >= seconds:
                session.stop.set()
    finally:
        frames.close()  # the recording finished, whatever ended the session (Ctrl+C, SIGTERM included)


def _line(result, session, started: float) -> str:
    elapsed = max(time.monotonic() - started, 1e-6)
    verdict = "good " if result.good else "below"
    return (f"frame {result.frame:6d}  score {result.score:.3f}  {verdict}  delay {result.delay_s * 1000:4.0f} ms  "
            f"scoring {len(session.scores) / elapsed:5.1f} frames/s")


def describe(summary) -> str:
    """What the session recorded and scored, in one paragraph."""
    text = (f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.frame_rate:.1f} frames/s), "
            f"{summary.scored} scored ({summary.scored_fraction:.0%}), {summary.good} good")
    if len(summary.delays_s):
        text += (f"; from a frame's arrival to its score: median {np.median(summary.delays_s) * 1000:.0f} ms, "
                 f"95th percentile {np.percentile(summary.delays_s, 95) * 1000:.0f} ms")
    if summary.dropped:
        text += f"; {summary.dropped} frames dropped by the source"
    text += f". Ended: {summary.ended}."
    if summary.recording is not None:
        text += f" Recorded: {shown(str(summary.recording))} (opens as a case)."
    return text


def _marks_from_keyboard(session) -> None:
    for _ in sys.stdin:
        session.mark_sweep()
        say("next sweep marked")
