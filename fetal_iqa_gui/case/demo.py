"""The built-in demo: a synthetic case, made once and kept in the user cache, scored by the demo model."""

from __future__ import annotations

import shutil
from pathlib import Path

import platformdirs

from .acouslic import IMAGES_DIR
from ..base.errors import NotEnoughSpace
from ..base.fileio import private_folder

DEMO_SWEEP_MB = 200  # its compressed image and mask, with room to spare
DEMO_SEED = 7


def demo_folder() -> Path:
    return Path(platformdirs.user_cache_dir("fetal-iqa")) / "demo"


def demo_case_path() -> Path:
    """The demo case's image file, synthesised on first use (a few seconds)."""
    from .synthetic import write_dataset
    folder = demo_folder()
    images = sorted((folder / IMAGES_DIR).glob("*.mha"))
    if not images:
        private_folder(folder)  # as the app's other folders in the cache, which hold what may name patients
        free_mb = shutil.disk_usage(folder).free // 2**20
        if free_mb < DEMO_SWEEP_MB:  # say so now, not after the synthesis
            raise NotEnoughSpace(folder, f"the demo sweep needs about {DEMO_SWEEP_MB} MB of free disk space; "
                                 f"there are {free_mb} MB", "Free some space and try again.")
        write_dataset(folder, cases=1, seed=DEMO_SEED)
        images = sorted((folder / IMAGES_DIR).glob("*.mha"))
    return images[0]
