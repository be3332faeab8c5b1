"""Files the app ships: the FetalCLIP config, the probe's field of view, the demo models."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESOURCES_DIR = PROJECT_ROOT / "resources"
MODEL_WEIGHTS_DIR = PROJECT_ROOT / "model_weights"

FETALCLIP_CONFIG = RESOURCES_DIR / "FetalCLIP_config.json"
FETALCLIP_WEIGHTS = MODEL_WEIGHTS_DIR / "FetalCLIP_weights.pt"
FOV_MASK = RESOURCES_DIR / "acouslic_fov_mask.mha"


@lru_cache(maxsize=1)
def load_fov_mask() -> np.ndarray:
    """The ACOUSLIC-AI probe's field of view, (562, 744) uint8 0/1, read-only."""
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(FOV_MASK))).astype(np.uint8)
    mask.setflags(write=False)
    return mask
