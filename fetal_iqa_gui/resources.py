"""Files the app ships: the FetalCLIP config, the probe's field of view, the demo models."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESOURCES_DIR = PROJECT_ROOT / "resources"
MODEL_WEIGHTS_DIR = PROJECT_ROOT / "model_weights"

FETALCLIP_CONFIG = RESOURCES_DIR / "FetalCLIP_config.json"
FETALCLIP_WEIGHTS = MODEL_WEIGHTS_DIR / "FetalCLIP_weights.pt"
FOV_MASK = RESOURCES_DIR / "acouslic_fov_mask.mha"
