"""What the user chose to score with, named without loading anything (no torch: the window
imports this at start-up, and torch loads later, off the GUI thread)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..resources import fetalclip_weights, user_adapters

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


def default_spec() -> ModelSpec:
    """The demo model unless FetalCLIP's weights and an adapter are in the user's model folder."""
    weights, adapters = fetalclip_weights(), user_adapters()
    if weights.is_file() and adapters:
        return ModelSpec(weights=weights, adapter=adapters[0])
    return ModelSpec.demo_model()


def real_weights_configured() -> bool:
    return fetalclip_weights().is_file()
