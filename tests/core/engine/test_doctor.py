"""`fetal-iqa doctor`'s report: what a bug report needs, even from a broken installation."""

import json
import os
import sys

import torch

from fetal_iqa_gui import __version__
from fetal_iqa_gui.engine.doctor import report
from fetal_iqa_gui.base.resources import user_weights_dir


def rows(text):
    """{label: value} of the report's lines."""
    return {label: value.strip() for label, value in (line.split(": ", 1) for line in text.splitlines())}


def test_report_names_versions_engine_and_folders():
    found = rows(report("6.9.9", "/home/someone/.config/fetal-iqa/fetal-iqa.conf"))
    assert found["fetal-iqa"].startswith(__version__)
    assert found["torch"] == torch.__version__
    assert found["Qt"] == "6.9.9"
    assert found["Python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    for name in ("open_clip", "peft", "numpy", "SimpleITK", "CUDA GPU", "Apple MPS", "CPU", "CPU features"):
        assert found[name] and found[name] != "not installed", name
    auto = found["Auto engine"]  # the tests force it (conftest.py); a GPU's is said by its device
    forced = os.environ["FETAL_IQA_AUTO"].replace(":", " ")
    assert auto == f"{forced} (forced by FETAL_IQA_AUTO)" or auto.split()[0] in ("CUDA", "MPS"), auto
    assert "OpenVINO" in found["Runtimes"] and "ONNX Runtime" in found["Runtimes"]
    assert "physical" in found["CPU cores"]
    assert found["Settings"] == "/home/someone/.config/fetal-iqa/fetal-iqa.conf"
    assert str(user_weights_dir()) in found["Model folders"] and str(user_weights_dir()) in found["FetalCLIP weights"]


def test_report_of_a_broken_torch_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    found = rows(report("cannot be loaded: libEGL.so.1", None))
    assert found["torch"].startswith("cannot be imported")
    assert found["Auto engine"].startswith("unknown")
    assert found["Qt"] == "cannot be loaded: libEGL.so.1"


def test_report_says_what_converted_models_were_calibrated_on_without_naming_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert rows(report("6.9.9", None))["Converted models"].endswith(": none")
    for name, manifest in [("a", {"backend": "openvino", "precision": "int8", "calibration": "first-sweep",
                                  "calibrated_on": "the first sweep scored (patient-42.mha)"}),
                           ("b", {"backend": "onnxruntime", "precision": "int8", "calibration": None}),
                           ("c", "not json")]:
        (tmp_path / "fetal-iqa" / "compiled" / name).mkdir(parents=True)
        (tmp_path / "fetal-iqa" / "compiled" / name / "manifest.json").write_text(json.dumps(manifest)[:-1] if name == "c"
                                                                                  else json.dumps(manifest))
    found = rows(report("6.9.9", None))["Converted models"]
    assert "openvino int8 (calibrated on the first sweep scored)" in found
    assert "onnxruntime int8;" in found and "one unreadable" in found
    assert "patient-42" not in found
