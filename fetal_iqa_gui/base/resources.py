"""Where files live: those the package ships, and the user's own model files.

Shipped inside the package (`fetal_iqa_gui/resources/`, read with importlib.resources, so an
installed wheel has them): the FetalCLIP config, the probe's field of view, the demo models.
The user's files (FetalCLIP's weights, trained adapters) go in the platform's user data folder;
a checkout's `model_weights/` folder, where earlier versions kept them, is still looked in.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import platformdirs

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

APP_NAME = "fetal-iqa"
PACKAGE_DATA = files("fetal_iqa_gui") / "resources"
FETALCLIP_CONFIG = PACKAGE_DATA / "FetalCLIP_config.json"
FOV_MASK = PACKAGE_DATA / "acouslic_fov_mask.mha"
DEMO_MODELS = {"classification": PACKAGE_DATA / "demo_cls.safetensors",
               "segmentation": PACKAGE_DATA / "demo_seg.safetensors"}

FETALCLIP_WEIGHTS_NAME = "FetalCLIP_weights.pt"
ADAPTER_SUFFIXES = (".safetensors", ".ckpt")
_CHECKOUT = Path(__file__).resolve().parents[2]


@contextmanager
def real_path(resource: Traversable) -> Iterator[Path]:
    """A file system path to a shipped file, for readers that need one (SimpleITK, safetensors)."""
    with as_file(resource) as path:
        yield path


def fetalclip_config() -> dict:
    """FetalCLIP's open_clip config (ViT-L/14, 224 px), as shipped."""
    return json.loads(FETALCLIP_CONFIG.read_text())


def user_weights_dir() -> Path:
    """Where the user puts FetalCLIP's weights and adapters: the platform's user data folder."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "model_weights"


def weights_dirs() -> list[Path]:
    """The folders looked in for model files: the user's, then a checkout's `model_weights/`."""
    folders = [user_weights_dir()]
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "model_weights").is_dir():
        folders.append(_CHECKOUT / "model_weights")
    return folders


def fetalclip_weights() -> Path:
    """FetalCLIP's weights where found, else where they belong (the user data folder)."""
    found = [folder / FETALCLIP_WEIGHTS_NAME for folder in weights_dirs()]
    return next((path for path in found if path.is_file()), found[0])


def user_adapters() -> list[Path]:
    """Adapters the user put beside the weights, in name order."""
    return sorted(path for folder in weights_dirs() for path in folder.glob("*")
                  if path.suffix in ADAPTER_SUFFIXES and path.is_file())


def log_file() -> Path:
    """The desktop app's log (it holds file paths, which may name patients: private to the user)."""
    return Path(platformdirs.user_log_dir(APP_NAME)) / "fetal-iqa.log"


def demo_model_target(task: str) -> Path | None:
    """Where `train-demo` writes the demo model so that the package reads it (None: not a folder)."""
    target = DEMO_MODELS[task]
    return target if isinstance(target, Path) else None
