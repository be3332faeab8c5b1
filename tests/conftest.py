"""Test configuration: headless Qt, and caches, settings and logs in temporary folders."""

import os
import tempfile

_home = tempfile.mkdtemp(prefix="fetal-iqa-tests-")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["FETAL_IQA_CACHE_DIR"] = os.path.join(_home, "cache")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_home, "config")
os.environ["XDG_CACHE_HOME"] = os.path.join(_home, "xdg-cache")
os.environ["XDG_STATE_HOME"] = os.path.join(_home, "state")

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
