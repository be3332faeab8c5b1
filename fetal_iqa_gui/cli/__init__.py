"""`fetal-iqa`: the command line over the same core as the desktop app.

Thin: parse, call the core, print. Messages for the user go to stderr, results to stdout; a
problem the user can act on is one `error:` line (exit 1, or 2 for bad input), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
from pathlib import Path

from .. import __version__
from ..case.acouslic import FRAMES_PER_SWEEP, SWEEPS
from ..base.errors import FetalIqaError, name_choices
from .helptext import HelpFormatter, add_command, examples
from .progress import ProgressBar
from .options import CLI_WORDS, bounded_int, positive_float
from ..base.text import counted, shown
from .score import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, add_score_command, say_error
from .training import add_training_commands
from .pacs import add_pacs_commands
from .live import add_live_command

DESCRIPTION = ("Score fetal ultrasound blind sweeps for image quality (FetalCLIP_CLS), export the best frames, "
               "measure the abdominal circumference, and train or evaluate models.")


EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl+C (128 + SIGINT)
EXIT_READER_GONE = 141  # as a shell reports a command ended by SIGPIPE (`... | head -1`)
EXIT_TERMINATED = 143  # SIGTERM (`kill`, a scheduler's time limit): ended as Ctrl-C ends it, said as itself


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that it ends work the same clean way."""


def _raise_terminated(signum, frame):
    raise Terminated()

EXIT_STATUSES = (
    (EXIT_OK, "done"),
    (EXIT_ERROR, "an output could not be written, or a model loaded or run, or a file sent (it stays queued), "
     "or a live source stopped delivering (what it sent stays recorded)"),
    (EXIT_BAD_INPUT, "bad input or usage: an input that cannot be used, an option refused"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl+C)"),
    (EXIT_READER_GONE, "the output's reader stopped reading (`... | head -1`)"),
    (EXIT_TERMINATED, "terminated (SIGTERM: `kill`, a scheduler's time limit), ended as Ctrl+C ends it"),
)
EXIT_STATUS_HEADING = "exit status:"


def main(argv: list[str] | None = None) -> int:
    """Run a command; its output read by a program that stopped reading (`| head -1`) ends it quietly."""
    for stream in (sys.stdout, sys.stderr):  # a name the terminal's encoding cannot write is escaped, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals are handled there only
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe is found here, not at exit (where Python prints a traceback)
    except BrokenPipeError:
        _discard_output()
        return EXIT_READER_GONE
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _discard_output() -> None:
    """What is still buffered for the closed pipe goes nowhere, so that exiting cannot fail on it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a captured stream): nothing to discard
        pass


class _TerminalFormatter(logging.Formatter):
    """Log lines on the terminal escaped as the errors are: a logged path cannot move the cursor or forge a line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return shown(super().formatMessage(record))


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name_choices(CLI_WORDS)  # errors' advice names the options to change
    handler = logging.StreamHandler()
    handler.setFormatter(_TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[handler])
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except Terminated:
        print("Terminated.", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FetalIqaError as error:  # a file or a choice the user can act on: said, not dumped
        say_error(error)
        return error.exit_code


def build_parser() -> argparse.ArgumentParser:
    exit_statuses = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_STATUSES)
    parser = argparse.ArgumentParser(
        prog="fetal-iqa", description=DESCRIPTION, formatter_class=HelpFormatter,
        epilog=f"{EXIT_STATUS_HEADING}\n{exit_statuses}\n\n"
        "Of several inputs, one that fails is reported and the others go on; the status is then the highest of "
        "the failures'.\n\n"
        + examples(("the desktop app on a synthetic sweep, scored by the demo model", "demo"),
                   ("what one command does, with its examples", "score --help")))
    parser.add_argument("--version", action="version", version=f"fetal-iqa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    info = add_command(commands, "info", "describe sweep files: frames, size, spacing, sweeps, padding",
                       "Describe sweep files without scoring them: the frame count and size, pixel spacing, memory, "
                       "and each sweep's frames and padding.",
                       (("every sweep of `fetal-iqa synth cases`", "info cases/images/stacked_fetal_ultrasound/*.mha"),
                        ("a DICOM series, by its folder", "info scanner-export/series-1")))
    info.add_argument("files", nargs="+", type=Path, metavar="FILE",
                      help="a sweep file (a volume or a picture) or a DICOM series' folder")
    info.set_defaults(handler=cmd_info)

    synth = add_command(commands, "synth", "write synthetic ACOUSLIC-AI-shaped cases",
                        "Write synthetic cases in the ACOUSLIC-AI challenge's folder layout (sweeps, masks, "
                        "circumferences), to try the app and the commands without patient data. They look like "
                        "sweeps, not like patients: no model is judged on them.",
                        (("one case of the challenge's shape in the folder cases/", "synth cases"),
                         ("three short cases, other ones than seed 0's", "synth small --cases 3 --frames-per-sweep 20 "
                          "--seed 7")))
    synth.add_argument("out_dir", type=Path, metavar="OUT_DIR",
                       help="the folder to write into (images/, masks/ and circumferences/ in it)")
    synth.add_argument("--cases", type=bounded_int(1), default=1, help="how many cases")
    synth.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=0,
                       help="the same seed writes the same cases (and case names)")
    synth.add_argument("--frames-per-sweep", type=bounded_int(10, 10_000), default=FRAMES_PER_SWEEP,
                       help=f"frames in each of the {SWEEPS} sweeps; {FRAMES_PER_SWEEP} as in the challenge")
    synth.set_defaults(handler=cmd_synth)

    add_score_command(commands)
    add_live_command(commands)

    measure = add_command(commands, "measure", "abdominal circumference of a mask",
                          "Measure the abdominal circumference (mm) of a segmentation mask, a picture or one frame "
                          "of a volume, by the ellipse fitted to its outline.",
                          (("frame 190 of the mask volume `fetal-iqa synth cases` writes",
                            "measure cases/masks/stacked_fetal_abdomen/*.mha --frame 190"),
                           ("a mask picture, which states no pixel spacing", "measure mask.png --spacing 0.28")))
    measure.add_argument("mask", type=Path, metavar="MASK",
                         help="a mask file: non-zero pixels are the abdomen")
    measure.add_argument("--frame", type=bounded_int(0), help="frame of a 3-D mask volume (0-based)")
    measure.add_argument("--spacing", type=positive_float,
                         help="mm per pixel, instead of the file's own calibration (needed when the file states none, "
                         "as a PNG or an uncalibrated DICOM; the ACOUSLIC-AI probe's is 0.28)")
    measure.set_defaults(handler=cmd_measure)

    for name, text, description in (
            ("gui", "open the desktop app", "Open the desktop app, on a sweep file if one is given."),
            ("demo", "open the app on the built-in synthetic demo", "Open the desktop app on a synthetic sweep "
             "(made on first use), scored by the demo model: trained on synthetic data, not for clinical use.")):
        how = ((("the window, to open files in", "gui"),
                ("the window on a sweep", "gui cases/images/stacked_fetal_ultrasound/*.mha")) if name == "gui" else
               (("the demo classification model: good frames marked", "demo"),
                ("the demo segmentation model: masks, and the ellipse caliper proposed", "demo --model demo-seg")))
        gui = add_command(commands, name, text, description, how)
        if name == "gui":
            gui.add_argument("sweep", nargs="?", type=Path, metavar="SWEEP",
                             help="a sweep file or DICOM folder to open (default: none, open one in the window)")
        else:
            gui.add_argument("--model", choices=("demo", "demo-seg"), default="demo",
                             help="demo-seg: the demo segmentation model, which draws the abdomen's mask and "
                             "proposes its ellipse caliper")
        gui.set_defaults(handler=cmd_gui, demo=name == "demo")

    add_training_commands(commands)
    add_pacs_commands(commands)

    doctor = add_command(commands, "doctor", "report versions, devices and where files live",
                         "Report this installation and computer: the versions of Python, torch, open_clip, peft, Qt "
                         "and the rest; the GPU and the CPU's features; the engine and precision 'auto' would choose; "
                         "and where settings, caches, logs and model files live. Paste it into a bug report.",
                         (("the report", "doctor"),
                          ("the same with debug logging on stderr", "--verbose doctor")))
    doctor.set_defaults(handler=cmd_doctor)
    return parser


# ---------------------------------------------------------------------------------------------

def cmd_info(args) -> int:
    from ..case.loading import load_case
    status = EXIT_OK
    for path in args.files:
        try:
            case = load_case(path)
        except FetalIqaError as error:
            say_error(error)
            status = EXIT_BAD_INPUT
            continue
        width, height = case.frame_size
        print(shown(path))
        print(f"  frames: {case.n_frames} ({counted(case.layout.n_images, 'image')}, "
              f"{int(case.layout.padding.sum())} padding)")
        print(f"  frame size: {width} x {height} px")
        print(f"  spacing: {case.spacing.describe()}")
        print(f"  memory: {case.nbytes / 2**20:.0f} MiB")
        print(f"  sweeps: {len(case.layout.sweeps)}")
        for sweep in case.layout.sweeps:
            padding = case.layout.padding_frames(sweep)
            span = f"frames {padding[0]}-{padding[-1]}" if len(padding) else "none"
            print(f"    sweep {sweep.number}: frames {sweep.start}-{sweep.stop - 1}, padding {len(padding)} ({span})")
    return status


def cmd_synth(args) -> int:
    from ..base.errors import NameTaken
    from ..case.acouslic import CIRCUMFERENCES_CSV
    from ..case.synthetic import write_dataset
    table = args.out_dir / CIRCUMFERENCES_CSV
    if table.exists() or table.is_symlink():  # a real dataset's ground truth, say: never replaced by synthetic rows
        raise NameTaken(table, "the folder already holds a table of circumferences (a dataset's, or an earlier "
                        "synth's), which synth would replace", "Choose an empty folder, or remove that table first.")
    progress = ProgressBar("synthesising", args.cases)
    cases = write_dataset(args.out_dir, args.cases, args.seed, args.frames_per_sweep, progress=progress.update)
    progress.close()
    for case in cases:
        print(f"{case.uuid}: AC per sweep (mm) {case.ac_per_sweep()}")
    return EXIT_OK


def cmd_measure(args) -> int:
    from ..case.measure import MeasurementError, measure_abdomen
    from ..case.spacing import entered_by_user
    from ..review.calipers import check_spacing
    from ..case.loading import load_case
    volume = load_case(args.mask)
    if volume.n_frames > 1 and args.frame is None:
        print(f"error: '{shown(args.mask.name)}' is a volume of {volume.n_frames} frames; give --frame N", file=sys.stderr)
        return EXIT_BAD_INPUT
    frame = args.frame or 0
    if not 0 <= frame < volume.n_frames:
        print(f"error: --frame must be within 0..{volume.n_frames - 1}", file=sys.stderr)
        return EXIT_BAD_INPUT
    spacing = entered_by_user((args.spacing, args.spacing)) if args.spacing else volume.spacing
    try:
        measure_abdomen(volume.frames[frame], None)
    except MeasurementError as error:
        print(f"error: no usable contour in '{shown(args.mask.name)}': {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        mm = check_spacing(spacing.mm)
        result = measure_abdomen(volume.frames[frame], mm)
    except MeasurementError as error:
        why = f"is unknown ({spacing.source})" if not spacing.known else f"cannot be used: {error}"
        print(f"error: the pixel spacing of '{shown(args.mask.name)}' {why}, so nothing can be measured in mm; "
              f"give --spacing MM (mm per pixel)", file=sys.stderr)
        return EXIT_BAD_INPUT
    sx, sy = mm
    a, b = result.ellipse.semi_axes
    axes = (f"semi-axes {a * sx:.1f} x {b * sx:.1f} mm" if math.isclose(sx, sy, rel_tol=1e-6)
            else f"semi-axes {a:.1f} x {b:.1f} px")
    print(f"AC {result.ac_mm:.1f} mm (ellipse {axes}, fit {result.fit_quality}, spacing {spacing.describe()})")
    if result.warning:
        print(f"warning: implausible AC: {result.warning}", file=sys.stderr)
    return EXIT_OK


def cmd_gui(args) -> int:
    from ..gui.app import run
    task = "segmentation" if getattr(args, "model", None) == "demo-seg" else "classification"
    return run(case=getattr(args, "sweep", None), demo=args.demo, demo_task=task)


def cmd_doctor(args) -> int:
    from ..engine.doctor import report
    try:  # the window's libraries, loaded without making a window: a missing system library shows here
        from PySide6 import QtWidgets  # noqa: F401
        from PySide6.QtCore import qVersion

        from ..gui.settings import settings_file
        qt_version, settings = qVersion(), settings_file()
    except ImportError as error:
        qt_version, settings = f"cannot be loaded: {error}", None
    print(report(qt_version, settings))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
