"""What the user chose to score with, named without loading anything (no torch: the window
imports this at start-up, and torch loads later, off the GUI thread)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..base.resources import fetalclip_weights, user_adapters

DEMO_LABEL = "Demo model: trained on synthetic sweeps, not for clinical use"


@dataclass(frozen=True)
class ModelSpec:
    """What the user chose: the demo model, or FetalCLIP weights + config + an adapter."""

    weights: Path | None = None
    config: Path | None = None
    adapter: Path | None = None
    demo: str | None = None  # a task name: use that demo model
    verify_sha256: bool = False

    @classmethod
    def demo_model(cls, task: str = "classification") -> "ModelSpec":
        return cls(demo=task)


def choose_model(demo: str | None = None, weights: str | Path | None = None, config: str | Path | None = None,
                 adapter: str | Path | None = None, verify_sha256: bool = False,
                 fallback_demo: str = "classification") -> ModelSpec:
    """The one rule for which model scores, at every front door:
    1. a demo model when one is asked for (`demo`: its task);
    2. the user's files when they name an adapter or weights (the weights default to FetalCLIP's in
       the user model folder, at load);
    3. else FetalCLIP's weights and the first adapter in the user model folder, when both are there;
    4. else the demo model of `fallback_demo` (the window's Settings choose which)."""
    if demo:
        return ModelSpec.demo_model(demo)
    if adapter or weights:
        return ModelSpec(weights=Path(weights) if weights else None, config=Path(config) if config else None,
                         adapter=Path(adapter) if adapter else None, verify_sha256=verify_sha256)
    found, adapters = fetalclip_weights(), user_adapters()
    if found.is_file() and adapters:
        return ModelSpec(weights=found, config=Path(config) if config else None, adapter=adapters[0],
                         verify_sha256=verify_sha256)
    return ModelSpec.demo_model(fallback_demo)


def real_weights_configured() -> bool:
    return fetalclip_weights().is_file()
