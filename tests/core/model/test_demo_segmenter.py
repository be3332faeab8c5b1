"""The shipped demo segmentation model, used as a user measures it: `score --model demo-seg
--challenge-output` on synthetic cases it never saw, then `evaluate --challenge`."""

import json

import pytest

from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.cli import main
from fetal_iqa_gui.model.checkpoint import read_checkpoint
from fetal_iqa_gui.base.resources import DEMO_MODELS, real_path


def test_the_demo_segmenter_is_shipped_labelled_and_small():
    with real_path(DEMO_MODELS["segmentation"]) as path:
        _, metadata = read_checkpoint(path)
        size = path.stat().st_size
    assert metadata["demo"] and metadata["task"] == "segmentation"
    assert metadata["config"]["decoder_filters"] < 32  # the reduced decoder of its recipe
    assert size < 5e6
    heldout = metadata["metrics"]["synthetic_heldout_challenge"]  # what the README quotes
    assert heldout["nae_ac"] <= 0.10 and heldout["wfss"] >= 0.6


@pytest.mark.slow
def test_the_demo_segmenter_measures_unseen_cases(tmp_path, capsys):
    # seeds the demo never trained, chose nor was measured on (train-demo uses 1, 2 and 3)
    synthetic.write_dataset(tmp_path / "cases", cases=2, seed=41, frames_per_sweep=60)
    assert main(["score", str(tmp_path / "cases" / synthetic.IMAGES_DIR), "--model", "demo-seg", "--backend", "torch",
                 "--precision", "fp32", "--out-dir", str(tmp_path / "scores"),
                 "--challenge-output", str(tmp_path / "predictions")]) == 0
    assert main(["evaluate", "--challenge", str(tmp_path / "predictions"), "--ground-truth", str(tmp_path / "cases"),
                 "--out", str(tmp_path / "metrics.json")]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["cases"]) == 2
    assert metrics["mean"]["wfss"] >= 0.6  # the frame it picks is one to measure on
    assert metrics["mean"]["nae_ac"] <= 0.15  # and the AC of its mask is near the true one
    assert "challenge score" in capsys.readouterr().out
