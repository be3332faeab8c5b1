"""Heat maps in the exports and the report, only when asked: a labelled picture of the frame's size
beside each exported frame, a second picture in the report; without the option nothing changes."""

import base64
import re

import cv2
import numpy as np
import pytest

from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.case.synthetic import make_case
from fetal_iqa_gui.cli import main
from fetal_iqa_gui.engine import explain
from fetal_iqa_gui.model.loading import load_model
from fetal_iqa_gui.model.spec import ModelSpec
from fetal_iqa_gui.review.export import HEAT_MAP_SUFFIX, ModelInfo
from fetal_iqa_gui.review.report import write_report
from fetal_iqa_gui.review.scored_case import ScoredCase


@pytest.fixture(scope="module")
def demo():
    return load_model(ModelSpec.demo_model("classification"))


@pytest.fixture
def scored(demo):
    synthetic = make_case(7, frames_per_sweep=12, sweeps=2)
    case = Case.from_array(synthetic.frames, "/data/case.mha", sweeps=2)
    scores = np.linspace(0.1, 0.95, case.n_frames).astype(np.float32)
    return ScoredCase(case, ModelInfo.of(demo), scores)


def test_an_export_with_heat_maps_writes_a_labelled_map_of_the_frames_size_beside_each_frame(scored, demo, tmp_path):
    explainer = explain.Explainer(demo.module)
    report = scored.export([5, 20], tmp_path / "with", explainer=explainer)
    assert not report.problems
    maps = sorted((tmp_path / "with").glob(f"*{HEAT_MAP_SUFFIX}"))
    assert [p.name for p in maps] == [f"case_frame005_sweep1_below-threshold{HEAT_MAP_SUFFIX}",
                                      f"case_frame020_sweep2{HEAT_MAP_SUFFIX}"]
    picture = cv2.imread(str(maps[0]), cv2.IMREAD_COLOR)
    assert picture.shape[:2] == scored.case.frames[5].shape
    heat = explainer.cached(scored.case.content_hash, 5)
    assert heat is not None and heat.method == explain.DEFAULT_METHOD
    peak_x, peak_y = heat.peak
    assert picture[peak_y, peak_x].std() > 10  # coloured where the model looked: not the grey frame
    plain = scored.export([5, 20], tmp_path / "without")
    assert sorted(p.name for p in (tmp_path / "without").iterdir()) == sorted(
        p.name for p in (tmp_path / "with").iterdir() if not p.name.endswith(HEAT_MAP_SUFFIX))
    assert not plain.problems


def test_the_report_shows_the_chosen_frames_heat_map_only_when_asked(scored, demo, tmp_path):
    page, exported = write_report(scored, tmp_path / "with", explainer=explain.Explainer(demo.module))
    text = page.read_text(encoding="utf-8")
    label = "heat map, attention rollout: where the model&#x27;s attention went for the quality score " \
            "(an explanation aid, not a measurement)"
    assert text.lower().count(label.lower()) >= 2  # each sweep's, in its picture's alt and caption
    pictures = re.findall(r'alt="Sweep 1, frame \d+: Heat map[^"]*" src="data:image/png;base64,([^"]+)"', text)
    assert len(pictures) == 1
    image = cv2.imdecode(np.frombuffer(base64.b64decode(pictures[0]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] / image.shape[0] == pytest.approx(744 / 562, abs=0.01)
    assert len(list((tmp_path / "with").glob(f"*{HEAT_MAP_SUFFIX}"))) == len(exported.frames)
    plain, _ = write_report(scored, tmp_path / "without")
    assert "heat map" not in plain.read_text(encoding="utf-8").lower()
    assert not list((tmp_path / "without").glob(f"*{HEAT_MAP_SUFFIX}"))


def test_score_writes_heat_maps_beside_the_best_frames_only_when_asked(small_dataset, tiny_cls_path, tmp_path, capsys):
    case = sorted((small_dataset / "images" / "stacked_fetal_ultrasound").glob("*.mha"))[0]
    args = ["score", str(case), "--adapter", str(tiny_cls_path), "--device", "cpu", "--no-cache", "--export-best"]
    assert main(args + [str(tmp_path / "with"), "--heat-maps"]) == 0
    frames = sorted((tmp_path / "with").glob("*.json"))
    maps = sorted((tmp_path / "with").glob(f"*{HEAT_MAP_SUFFIX}"))
    assert frames and [p.name.removesuffix(HEAT_MAP_SUFFIX) for p in maps] == [p.stem for p in frames]
    assert cv2.imread(str(maps[0])).shape[:2] == cv2.imread(str(frames[0].with_suffix(".png"))).shape[:2]
    assert main(args + [str(tmp_path / "without")]) == 0
    assert not list((tmp_path / "without").glob(f"*{HEAT_MAP_SUFFIX}"))
    assert main(["score", str(case), "--adapter", str(tiny_cls_path), "--heat-maps"]) == 2
    assert "--heat-maps goes with --export-best" in capsys.readouterr().err
