"""Options shared by the commands: which model, how to run it, and argument types that check ranges."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..runtime import BACKENDS

MAX_THREADS = 256  # far beyond any CPU here; libgomp aborts on absurd counts instead of saying so
WEIGHTS_HELP = "FetalCLIP_weights.pt (default: the one in the user model folder, see `fetal-iqa doctor`)"


def bounded_int(low: int, high: int | None = None):
    """An argparse type: an integer within [low, high]; outside it, a usage error (exit 2), not a traceback."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {span}")
        return value
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number above zero (a pixel spacing, a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive finite number")
    return value


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", choices=("demo", "demo-seg"), help="a built-in demo model (synthetic data)")
    group.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    group.add_argument("--config", type=Path, help="open_clip config JSON (default FetalCLIP's)")
    group.add_argument("--adapter", type=Path, help="our .safetensors adapter or the paper's Lightning .ckpt")
    group.add_argument("--verify-weights", action="store_true", help="check the weights' sha256 against the published one")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    group.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16", "int8"), default="auto",
                       help="auto: bf16 on a GPU; int8 on a compiled CPU backend; on torch's CPU path bf16 where native, else int8")
    group.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="auto: OpenVINO, else ONNX Runtime on a CPU where installed (pip install 'fetal-iqa[cpu]'), "
                            "else torch")
    group.add_argument("--batch-size", type=bounded_int(1, 4096),
                       help="frames per forward pass (default: 8 on a CPU, 64 on a GPU)")
    group.add_argument("--threads", type=bounded_int(1, MAX_THREADS), help="CPU threads (default: one per physical core)")
    group.add_argument("--calibration", type=Path, metavar="SWEEP",
                       help="OpenVINO int8 of a real model: calibrate on this sweep file (default: the first sweep scored)")


def model_spec(args):
    from ..model.spec import ModelSpec, default_spec
    if args.model:
        return ModelSpec.demo_model("segmentation" if args.model == "demo-seg" else "classification")
    if args.adapter or args.weights:
        return ModelSpec(weights=args.weights, config=args.config, adapter=args.adapter,
                         verify_sha256=args.verify_weights)
    return default_spec()


def load_engine(args, first_sweep: Path | None = None):
    """The model and engine the options name (`first_sweep`: the file scored first, which OpenVINO's
    int8 is calibrated on without --calibration); raises `FetalIqaError` subclasses the caller reports."""
    from ..model.loading import load_model
    from ..scoring import EngineSettings, make_engine
    from ..sweep import load_sweep
    model = load_model(model_spec(args))
    settings = EngineSettings(args.device, args.precision, args.batch_size, args.threads, args.backend, args.calibration)
    engine = make_engine(model, settings, notify=lambda message: print(f"note: {message}", file=sys.stderr, flush=True),
                         first_sweep=None if first_sweep is None else lambda: load_sweep(first_sweep))
    for warning in model.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if model.is_demo:
        print(f"note: {model.name}.", file=sys.stderr)
    return engine

