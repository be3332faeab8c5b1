"""One rule for each choice, at every front door: which model scores, what `auto` means (and what
the help says it means), what "good" is, and the threshold a frame is judged by."""

import csv
import re

import numpy as np
import pytest

from fetal_iqa_gui.base.resources import FETALCLIP_WEIGHTS_NAME, user_weights_dir
from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.cli import build_parser, main
from fetal_iqa_gui.cli.options import model_spec
from fetal_iqa_gui.engine.choice import EngineSettings, declared_settings, describe_auto
from fetal_iqa_gui.model.spec import ModelSpec, choose_model
from fetal_iqa_gui.model.task import is_good


@pytest.fixture
def user_model_folder(tmp_path, monkeypatch):
    """A user model folder holding FetalCLIP's weights (a stand-in file) and two adapters."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = user_weights_dir()
    folder.mkdir(parents=True)
    (folder / FETALCLIP_WEIGHTS_NAME).write_bytes(b"weights")
    for name in ("b_second.safetensors", "a_first.safetensors"):
        (folder / name).write_bytes(b"adapter")
    return folder


def test_an_adapter_in_the_user_model_folder_is_what_scores_unless_another_is_named(user_model_folder, tmp_path):
    chosen = choose_model()
    assert chosen.adapter == user_model_folder / "a_first.safetensors"
    assert chosen.weights == user_model_folder / FETALCLIP_WEIGHTS_NAME
    assert model_spec(build_parser().parse_args(["score", "case.mha"])) == chosen  # the CLI's own options
    named = tmp_path / "mine.safetensors"
    assert choose_model(adapter=named).adapter == named
    assert choose_model(demo="segmentation") == ModelSpec.demo_model("segmentation")


def test_without_the_weights_the_demo_model_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "empty"))
    assert choose_model() == ModelSpec.demo_model("classification")
    assert choose_model(fallback_demo="segmentation") == ModelSpec.demo_model("segmentation")


def help_of(command):
    with pytest.raises(SystemExit):
        main([command, "--help"])


def test_the_help_says_what_auto_does_as_the_rules_say_it(capsys):
    help_of("score")
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    for name, setting in declared_settings():
        assert "--" + name.replace("_", "-") in text
        if setting.rules:
            assert re.sub(r"\s+", " ", describe_auto(setting.rules)) in text, name
    assert "bf16 on a GPU" not in text and "ONNX Runtime where installed" not in text  # the help that had drifted


def test_every_engine_setting_is_an_option_with_its_default():
    parsed = build_parser().parse_args(["score", "case.mha"])
    assert EngineSettings(**{name: getattr(parsed, name) for name, _ in declared_settings()}) == EngineSettings()


def test_good_is_reaching_the_threshold_and_a_missing_score_never_is():
    assert is_good(0.5, 0.5) and not is_good(0.49, 0.5) and not is_good(float("nan"), 0.0)
    assert is_good(np.array([0.2, np.nan, 0.9]), 0.5).tolist() == [False, False, True]
    assert is_good(np.float32(0.7), 0.7)  # a float32 score shown as 0.700 reaches the 0.7 typed


def test_the_cli_threshold_judges_every_frame_and_the_summary(small_dataset, tiny_cls_path, tmp_path, capsys):
    path = sorted((small_dataset / synthetic.IMAGES_DIR).glob("*.mha"))[0]
    out = tmp_path / "scores.csv"
    common = ["score", str(path), "--adapter", str(tiny_cls_path), "--device", "cpu", "--precision", "fp32"]
    assert main([*common, "--out", str(out)]) == 0
    scores = np.array([float(r["score"]) for r in csv.DictReader(open(out)) if r["score"]])
    threshold = float(np.median(scores))  # half the frames good: the model's own 0.5 would say otherwise
    again = tmp_path / "judged.csv"
    assert main([*common, "--threshold", f"{threshold}", "--out", str(again)]) == 0
    rows = [r for r in csv.DictReader(open(again)) if r["score"]]
    assert [r["good"] for r in rows] == [str(int(float(r["score"]) >= threshold)) for r in rows]
    assert {r["good"] for r in rows} == {"0", "1"}
    capsys.readouterr()
    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(SystemExit) as refused:
            main([*common, "--threshold", bad, "--out", str(tmp_path / "never.csv")])
        assert refused.value.code == 2 and "--threshold" in capsys.readouterr().err
    assert not (tmp_path / "never.csv").exists()
