"""`fetal-iqa`: the command line. Thin: parse, call the core, print.

Messages for the user go to stderr, results to stdout; exit code 2 when any input failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .fileio import ExportError
from .progress import ProgressBar

log = logging.getLogger("fetal_iqa_gui")

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except ExportError as error:  # a file the command writes (a full disk, a read-only folder): said, not dumped
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fetal-iqa", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fetal-iqa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    info = commands.add_parser("info", help="describe sweep files: frames, size, spacing, sweeps, padding")
    info.add_argument("files", nargs="+", type=Path, metavar="FILE")
    info.set_defaults(handler=cmd_info)

    synth = commands.add_parser("synth", help="write synthetic ACOUSLIC-AI-shaped cases")
    synth.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    synth.add_argument("--cases", type=int, default=1)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--frames-per-sweep", type=int, default=140, help="140 as in the challenge (6 sweeps)")
    synth.set_defaults(handler=cmd_synth)

    score = commands.add_parser("score", help="score every frame of sweep files or folders")
    score.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    score.add_argument("--out", type=Path, help="CSV of one sweep's scores (one input)")
    score.add_argument("--out-dir", type=Path, help="one CSV per sweep plus summary.csv (any number of inputs)")
    score.add_argument("--challenge-output", type=Path, metavar="DIR",
                       help="write the challenge's per-case frame number and mask")
    score.add_argument("--export-best", type=Path, metavar="DIR", help="export each sweep's best frame (PNG + sidecar)")
    score.add_argument("--no-cache", action="store_true", help="neither read nor write the score cache")
    add_model_options(score)
    add_engine_options(score)
    score.set_defaults(handler=cmd_score)

    measure = commands.add_parser("measure", help="abdominal circumference of a mask")
    measure.add_argument("mask", type=Path, metavar="MASK")
    measure.add_argument("--frame", type=int, help="frame of a 3-D mask volume (0-based)")
    measure.add_argument("--spacing", type=float, help="mm per pixel when the file has none (default 0.28)")
    measure.set_defaults(handler=cmd_measure)

    for name, text in (("gui", "open the desktop app"), ("demo", "open the app on the built-in synthetic demo")):
        gui = commands.add_parser(name, help=text)
        if name == "gui":
            gui.add_argument("sweep", nargs="?", type=Path, metavar="SWEEP")
        gui.set_defaults(handler=cmd_gui, demo=name == "demo")

    from .training.cli import add_training_commands
    add_training_commands(commands, add_model_options, add_engine_options)
    return parser


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", choices=("demo", "demo-seg"), help="a built-in demo model (synthetic data)")
    group.add_argument("--weights", type=Path, help="FetalCLIP_weights.pt (default model_weights/)")
    group.add_argument("--config", type=Path, help="open_clip config JSON (default FetalCLIP's)")
    group.add_argument("--adapter", type=Path, help="our .safetensors adapter or the paper's Lightning .ckpt")
    group.add_argument("--verify-weights", action="store_true", help="check the weights' sha256 against the published one")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    group.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16", "int8"), default="auto",
                       help="auto: bf16 on a GPU or a CPU with native bf16, else int8 on a CPU")
    group.add_argument("--batch-size", type=int)
    group.add_argument("--threads", type=int, help="CPU threads (default: all cores)")


def model_spec(args):
    from .model.loading import ModelSpec, default_spec
    if args.model:
        return ModelSpec.demo_model("segmentation" if args.model == "demo-seg" else "classification")
    if args.adapter or args.weights:
        return ModelSpec(weights=args.weights, config=args.config, adapter=args.adapter,
                         verify_sha256=args.verify_weights)
    return default_spec()


def load_engine(args):
    """The model and engine the options name, or an error message for the user."""
    from .model.loading import load_model
    from .model.tower import ModelLoadError
    from .scoring import EngineSettings, make_engine
    try:
        model = load_model(model_spec(args))
        engine = make_engine(model, EngineSettings(args.device, args.precision, args.batch_size, args.threads))
    except (ModelLoadError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    for warning in model.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if model.is_demo:
        print(f"note: {model.name}.", file=sys.stderr)
    return engine


# ---------------------------------------------------------------------------------------------

def cmd_info(args) -> int:
    from .sweep import SweepLoadError, load_sweep
    status = EXIT_OK
    for path in args.files:
        try:
            sweep = load_sweep(path)
        except SweepLoadError as error:
            print(f"error: {error}", file=sys.stderr)
            status = EXIT_BAD_INPUT
            continue
        width, height = sweep.frame_size
        print(f"{path}")
        print(f"  frames: {sweep.n_frames} ({sweep.layout.n_images} images, "
              f"{int(sweep.layout.padding.sum())} padding)")
        print(f"  frame size: {width} x {height} px")
        print(f"  spacing: {sweep.spacing_mm[0]:.3f} x {sweep.spacing_mm[1]:.3f} mm")
        print(f"  memory: {sweep.nbytes / 2**20:.0f} MiB")
        print(f"  sweeps: {len(sweep.layout.slots)}")
        for slot in sweep.layout.slots:
            padding = sweep.layout.padding_frames(slot)
            span = f"frames {padding[0]}-{padding[-1]}" if len(padding) else "none"
            print(f"    sweep {slot.number}: frames {slot.start}-{slot.stop - 1}, padding {len(padding)} ({span})")
    return status


def cmd_synth(args) -> int:
    from .synthetic import write_dataset
    if args.cases < 1 or args.frames_per_sweep < 10:
        print("error: --cases must be >= 1 and --frames-per-sweep >= 10", file=sys.stderr)
        return EXIT_BAD_INPUT
    progress = ProgressBar("synthesising", args.cases)
    cases = write_dataset(args.out_dir, args.cases, args.seed, args.frames_per_sweep, progress=progress.update)
    progress.close()
    for case in cases:
        print(f"{case.uuid}: AC per sweep (mm) {case.ac_per_sweep()}")
    return EXIT_OK


def cmd_measure(args) -> int:
    from .measure import MeasurementError, measure_abdomen
    from .sweep import SweepLoadError, load_sweep
    try:
        volume = load_sweep(args.mask)
    except SweepLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if volume.n_frames > 1 and args.frame is None:
        print(f"error: '{args.mask.name}' is a volume of {volume.n_frames} frames; give --frame N", file=sys.stderr)
        return EXIT_BAD_INPUT
    frame = args.frame or 0
    if not 0 <= frame < volume.n_frames:
        print(f"error: --frame must be within 0..{volume.n_frames - 1}", file=sys.stderr)
        return EXIT_BAD_INPUT
    spacing = args.spacing or volume.spacing_mm[0]
    try:
        result = measure_abdomen(volume.frames[frame], spacing)
    except MeasurementError as error:
        print(f"error: no usable contour in '{args.mask.name}': {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    a, b = result.ellipse.semi_axes
    print(f"AC {result.ac_mm:.1f} mm (ellipse semi-axes {a * spacing:.1f} x {b * spacing:.1f} mm, "
          f"fit {result.fit_quality}, spacing {spacing:.3f} mm)")
    return EXIT_OK


def cmd_gui(args) -> int:
    from .gui.app import run
    return run(sweep=getattr(args, "sweep", None), demo=args.demo)


def cmd_score(args) -> int:
    from .batch import score_paths
    if args.out and len(args.paths) != 1:
        print("error: --out takes one sweep; use --out-dir for several", file=sys.stderr)
        return EXIT_BAD_INPUT
    engine = load_engine(args)
    if engine is None:
        return EXIT_ERROR
    return score_paths(args, engine)


if __name__ == "__main__":
    sys.exit(main())
