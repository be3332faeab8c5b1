"""The ACOUSLIC-AI challenge's facts, stated once: case shape, folders, file names, the probe.

A case is one MetaImage volume of 6 probe sweeps, each in a fixed slot of 140 frames (the rest of
a slot is all-zero padding), 744 x 562 pixels of 0.28 mm, imaged through the same probe's fan.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..base.resources import FOV_MASK, real_path

SWEEPS = 6
FRAMES_PER_SWEEP = 140
CASE_FRAMES = SWEEPS * FRAMES_PER_SWEEP
DEFAULT_SPACING_MM = 0.28

# The data release's folder layout, and the files an algorithm writes per case
IMAGES_DIR = Path("images/stacked_fetal_ultrasound")
MASKS_DIR = Path("masks/stacked_fetal_abdomen")
CIRCUMFERENCES_CSV = Path("circumferences/fetal_abdominal_circumferences_per_sweep.csv")
CHALLENGE_FRAME_JSON = "fetal-abdomen-frame-number.json"
CHALLENGE_MASK = "fetal-abdomen-segmentation.mha"

# Mask labels
LABEL_OPTIMAL = 1
LABEL_SUBOPTIMAL = 2


@lru_cache(maxsize=1)
def load_fov_mask() -> np.ndarray:
    """The probe's field of view, (562, 744) uint8 0/1, read-only."""
    with real_path(FOV_MASK) as path:
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.uint8)
    mask.setflags(write=False)
    return mask
