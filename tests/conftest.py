"""Test configuration: headless Qt, and caches, settings and logs in temporary folders."""

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

for _stale in Path(tempfile.gettempdir()).glob("fetal-iqa-tests-*"):  # left by runs killed before their cleanup
    if time.time() - _stale.stat().st_mtime > 6 * 3600:
        shutil.rmtree(_stale, ignore_errors=True)
_home = tempfile.mkdtemp(prefix="fetal-iqa-tests-")
atexit.register(shutil.rmtree, _home, ignore_errors=True)  # the demo sweep alone is 130 MB a run
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["FETAL_IQA_CACHE_DIR"] = os.path.join(_home, "cache")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_home, "config")
os.environ["XDG_CACHE_HOME"] = os.path.join(_home, "xdg-cache")
os.environ["XDG_STATE_HOME"] = os.path.join(_home, "state")
os.environ["FETAL_IQA_BACKEND"] = "torch"  # `auto` would convert every test model (tests/core/test_backends.py does)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fetal_iqa_gui import synthetic  # noqa: E402

SMALL_CONFIG = {"embed_dim": 32, "vision_cfg": {"image_size": 224, "layers": 24, "width": 64, "patch_size": 14}}


@pytest.fixture(scope="session")
def small_case():
    """A synthetic case of 6 sweeps of 30 frames (the real frame size and fan)."""
    return synthetic.make_case(seed=11, frames_per_sweep=30)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """Four small synthetic cases in the challenge's folder layout."""
    folder = tmp_path_factory.mktemp("dataset")
    synthetic.write_dataset(folder, cases=4, seed=3, frames_per_sweep=24)
    return folder


@pytest.fixture
def rng():
    return np.random.default_rng(0)

TINY_CONFIG = {"embed_dim": 16, "vision_cfg": {"image_size": 224, "layers": 4, "width": 32, "head_width": 16,
                                              "patch_size": 28}}


def _tiny_checkpoint(folder, task, seed):
    import torch

    from fetal_iqa_gui.model.checkpoint import build_model, save_checkpoint
    torch.manual_seed(seed)
    model = build_model(task, TINY_CONFIG)
    with torch.no_grad():  # a head that spreads scores over (0, 1), so that orders and thresholds matter
        for name, parameter in model.named_parameters():
            if name.startswith("classifier.weight"):
                parameter.mul_(20)
    path = folder / f"tiny_{task}.safetensors"
    save_checkpoint(model, path, {"config": TINY_CONFIG, "name": f"tiny {task} test model"}, full_model=True)
    return path


@pytest.fixture(scope="session")
def tiny_cls_path(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("models"), "classification", 0)


@pytest.fixture(scope="session")
def tiny_seg_path(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("models"), "segmentation", 1)
