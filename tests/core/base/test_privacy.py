"""No dependency reports usage, and nothing is written into the user's home outside the app's own
folders: OpenVINO and NNCF, left alone, write a client id and usage counts into ~/intel/."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

import fetal_iqa_gui
from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.engine.choice import installed

APP_FOLDERS = (".cache/fetal-iqa", ".local/share/fetal-iqa", ".local/state/fetal-iqa", ".config/fetal-iqa")


def test_importing_the_package_turns_every_usage_report_off():
    assert fetal_iqa_gui.__version__
    assert sys.modules["openvino_telemetry"] is None  # OpenVINO's and NNCF's `import` of it fails: their stubs run
    for name in ("RAY_USAGE_STATS_ENABLED", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        assert os.environ[name] in ("0", "1")


@pytest.mark.slow
@pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")
def test_scoring_through_openvino_writes_only_into_the_apps_own_folders(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    case = synthetic.make_case(seed=1, frames_per_sweep=6)
    sitk.WriteImage(sitk.GetImageFromArray(case.frames), str(tmp_path / "case.mha"))
    # a user's environment: their home, no test settings, not in CI (OpenVINO keeps quiet in CI)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "PYTHONPATH": str(Path(fetal_iqa_gui.__file__).parents[1])}
    result = subprocess.run([sys.executable, "-m", "fetal_iqa_gui", "score", "case.mha", "--model", "demo",
                             "--backend", "openvino", "--precision", "int8", "--out", "scores.csv"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scores.csv").is_file()
    written = [path.relative_to(home).as_posix() for path in home.rglob("*") if not path.is_dir()]
    assert any(path.startswith(".cache/fetal-iqa/compiled/") for path in written)  # it did convert and cache
    assert [path for path in written if not path.startswith(APP_FOLDERS)] == []
    assert not (home / "intel").exists()
    assert "Statistics collection" not in result.stdout + result.stderr  # NNCF's progress bars stay out
