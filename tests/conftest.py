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
# `auto` the same on every machine, and no test model converted (engine/measured.py); set it to run the
# suite as another of `auto`'s choices: FETAL_IQA_AUTO=openvino:int8 ./run-tests tests/core
os.environ.setdefault("FETAL_IQA_AUTO", "torch:fp32")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fetal_iqa_gui.case import synthetic  # noqa: E402
from tests.support import tiny_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def plain_choice_words():
    """Each test starts with no front door's words for the choices in errors' advice: a front door
    (the CLI's `main`, a window) names them when it starts, and that must not leak into the next test."""
    from fetal_iqa_gui.base.errors import name_choices
    from fetal_iqa_gui.engine import agreement, tokens
    name_choices({})
    agreement.forget()  # nor does what a fast path's check found (a verdict holds for a process)
    tokens.forget()  # nor what a token subset's did
    yield
    name_choices({})


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

@pytest.fixture(scope="session")
def tiny_cls_path(tmp_path_factory, small_case):
    return tiny_checkpoint(tmp_path_factory.mktemp("models"), "classification", 0, small_case)


@pytest.fixture(scope="session")
def tiny_seg_path(tmp_path_factory, small_case):
    return tiny_checkpoint(tmp_path_factory.mktemp("models"), "segmentation", 1, small_case)
