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
os.environ["XDG_DATA_HOME"] = os.path.join(_home, "data")  # the user model folder: none of the user's models
os.environ["FETAL_IQA_BACKEND"] = "torch"  # `auto` would convert every test model (tests/core/test_backends.py does)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fetal_iqa_gui.case import synthetic  # noqa: E402



@pytest.fixture(autouse=True)
def plain_choice_words():
    """Each test starts with no front door's words for the choices in errors' advice: a front door
    (the CLI's `main`, a window) names them when it starts, and that must not leak into the next test."""
    from fetal_iqa_gui.base.errors import name_choices
    name_choices({})
    yield
    name_choices({})


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


def _tiny_checkpoint(folder, task, seed, case):
    """A tiny random model whose head is set on the synthetic frames of `case`: CLS scores spread
    over (0, 1), SEG masks cover about 1 % of a frame (the threshold), so that orders, thresholds
    and largest areas matter (as drawn, its scores are all about 1e-7 and its masks empty)."""
    import torch

    from fetal_iqa_gui.model.checkpoint import build_model, save_checkpoint
    from fetal_iqa_gui.engine.preprocess import frames_to_tensor
    torch.manual_seed(seed)
    model = build_model(task, TINY_CONFIG).eval()
    frames = case.frames[np.flatnonzero(case.frames.reshape(len(case.frames), -1).any(1))]
    images = frames_to_tensor(frames[::10 if task == "classification" else 40])  # SEG is slow
    with torch.no_grad():
        logits = model(images).flatten()
        if task == "classification":  # logits of median 0 and standard deviation 2
            scale = 2 / logits.std()
            model.classifier.weight.mul_(scale)
            model.classifier.bias.sub_(logits.median()).mul_(scale)
        else:  # the last convolution's bias: 1 % of the pixels above 0
            head = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            head.bias.sub_(torch.quantile(logits[::3], 0.99))
    path = folder / f"tiny_{task}.safetensors"
    save_checkpoint(model, path, {"config": TINY_CONFIG, "name": f"tiny {task} test model"}, full_model=True)
    return path


@pytest.fixture(scope="session")
def tiny_cls_path(tmp_path_factory, small_case):
    return _tiny_checkpoint(tmp_path_factory.mktemp("models"), "classification", 0, small_case)


@pytest.fixture(scope="session")
def tiny_seg_path(tmp_path_factory, small_case):
    return _tiny_checkpoint(tmp_path_factory.mktemp("models"), "segmentation", 1, small_case)


def write_dicom_series(folder, volume):
    """A DICOM series (one file a slice, in one series, with positions and instance numbers) of a
    (slices, rows, columns) uint8 volume."""
    import SimpleITK as sitk
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(volume)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for index in range(len(volume)):
        piece = image[:, :, index]
        piece.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1.12345")
        piece.SetMetaData("0020|0013", str(index + 1))
        piece.SetMetaData("0020|0032", f"0\\0\\{index}")
        piece.SetMetaData("0008|0060", "US")
        writer.SetFileName(str(folder / f"slice{index:03d}.dcm"))
        writer.Execute(piece)
    return folder
