"""Options shared by the commands: which model, how to run it, and argument types that check ranges."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from ..engine.choice import EngineSettings, choice_words, declared_settings
from ..model.spec import ModelSpec, choose_model
from ..model.task import SCORE_MEANING

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


CLI_WORDS = {"weights": "--weights", "config": "--config", "adapter": "--adapter", "model": "--model",
             "threshold": "--threshold", "force": "--force", "blank_outside_image": "--blank-outside-image",
             **choice_words("cli")}


def unit_fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (a probability, or a share of the frame)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is out of range: give a number from 0 to 1")
    return value


def add_model_options(parser: argparse.ArgumentParser, threshold: bool = False) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", choices=("demo", "demo-seg"), help="a built-in demo model (synthetic data)")
    group.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    group.add_argument("--config", type=Path, help="open_clip config JSON (default FetalCLIP's)")
    group.add_argument("--adapter", type=Path, help="our .safetensors adapter or the paper's Lightning .ckpt "
                       "(default: the first in the user model folder, when FetalCLIP's weights are there too; "
                       "else the demo model)")
    group.add_argument("--verify-weights", action="store_true", help="check the weights' sha256 against the published one")
    if threshold:
        meanings = "; ".join(f"{task}: the {meaning}" for task, meaning in SCORE_MEANING.items())
        group.add_argument("--threshold", type=unit_fraction,
                           help=f"the score a frame must reach to be good (default: the model's own). Scores are, "
                           f"for {meanings}")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """One option per declared engine setting (engine/choice.py), its choices, bounds and help from there."""
    group = parser.add_argument_group("engine")
    for name, setting in declared_settings():
        kind: dict[str, Any] = {"choices": setting.choices} if setting.choices else {}  # add_argument's, by name
        if setting.bounds:
            kind["type"] = bounded_int(*setting.bounds)
        elif setting.is_path:
            kind.update(type=Path, metavar="SWEEP")
        default = getattr(EngineSettings(), name)
        group.add_argument(CLI_WORDS[name], dest=name, default=default, help=setting.full_help, **kind)


def model_spec(args) -> ModelSpec:
    """The model the options name, by the one rule every front door follows (model/spec.py)."""
    demo = {"demo": "classification", "demo-seg": "segmentation"}.get(args.model) if args.model else None
    return choose_model(demo, args.weights, args.config, args.adapter, args.verify_weights)


def engine_settings(args) -> EngineSettings:
    values = {name: getattr(args, name) for name, _ in declared_settings()}
    settings: dict[str, Any] = {name: str(value) if isinstance(value, Path) else value
                                for name, value in values.items()}
    return EngineSettings(**settings)


def load_engine(args, first_case: Path | None = None):
    """The model and engine the options name (`first_case`: the file scored first, which OpenVINO's
    int8 is calibrated on without --calibration); raises `FetalIqaError` subclasses the caller reports."""
    from ..case.loading import load_case
    from ..engine.scoring import load_engine as load
    engine = load(model_spec(args), engine_settings(args),
                  notify=lambda message: print(f"note: {message}", file=sys.stderr, flush=True),
                  first_case=None if first_case is None else lambda: load_case(first_case))
    for warning in engine.model.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if engine.model.is_demo:
        print(f"note: {engine.model.name}.", file=sys.stderr)
    return engine
