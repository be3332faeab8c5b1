"""`fetal-iqa score --ray`: the same outputs as one process, failures and resume across workers."""

import json
import os
import sys

import pytest

from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.runs.batch import DONE_DIR
from fetal_iqa_gui.cli import main


def test_ray_missing_says_how_to_install_it(small_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    args = ["score", str(small_dataset / synthetic.IMAGES_DIR), "--model", "demo", "--out-dir", str(tmp_path / "out"),
            "--ray"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "pip install 'fetal-iqa[cluster]'" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for this module's runs (a run uses a Ray that is up, and leaves it up):
    starting one takes 10-20 s here."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _outputs(root):
    """Every output file's bytes by its path under `root`; times and `root` itself taken out."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".json":
            document = json.loads(data.decode().replace(os.path.realpath(root), "ROOT"))
            if isinstance(document, dict):
                document.pop("exported_at", None)  # sidecars
            data = document
        found[str(path.relative_to(root))] = data
    return found


@pytest.mark.slow
def test_ray_run_writes_what_one_process_writes_and_resumes(local_ray, small_dataset, tiny_cls_path, tmp_path,
                                                            capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for case in sorted((small_dataset / synthetic.IMAGES_DIR).glob("*.mha")):
        (inputs / case.name).symlink_to(case)
    (inputs / "zz-broken.mha").write_text("nonsense")

    def score(root, *extra):
        return main(["score", str(inputs), "--adapter", str(tiny_cls_path), "--device", "cpu", "--threads", "1",
                     "--out-dir", str(root / "out"), "--challenge-output", str(root / "challenge"),
                     "--export-best", str(root / "best"), "--no-cache", *extra])

    one, spread = tmp_path / "one", tmp_path / "ray"
    assert score(one) == 2
    capsys.readouterr()
    assert score(spread, "--ray", "--ray-workers", "2") == 2  # the broken file failed, the others finished
    out, err = capsys.readouterr()
    assert "zz-broken.mha" in err and "2 Ray workers" in err and "1 of 5 inputs failed" in err
    assert out.count("best sweep 1") == 4
    expected = _outputs(one)
    assert len([name for name in expected if name.startswith(f"out/{DONE_DIR}/")]) == 4
    assert _outputs(spread) == expected

    # interrupted: one case half written (its marker unfinished, its CSV not yet there), one not begun
    half, untouched = sorted((spread / "out" / DONE_DIR).glob("*.json"))[:2]
    marker = json.loads(half.read_text())
    half.write_text(json.dumps({**marker, "finished": False}))
    (spread / "out" / f"{half.stem}_scores.csv").unlink()
    for written in json.loads(untouched.read_text())["outputs"]:
        os.unlink(written)
    untouched.unlink()
    kept = {path: path.stat().st_mtime_ns for path in (spread / "out").glob("*_scores.csv")}
    assert score(spread, "--ray", "--ray-workers", "2") == 2
    out, err = capsys.readouterr()
    assert err.count("skipping") == 2 and out.count("best sweep 1") == 2
    assert half.stem in out and untouched.stem in out
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # the finished ones were not redone
    assert _outputs(spread) == expected


def test_a_worker_calibrates_int8_on_the_runs_first_sweep_as_one_process_does(small_dataset, tiny_cls_path,
                                                                              monkeypatch):
    from fetal_iqa_gui.runs import cluster
    from fetal_iqa_gui.engine import scoring
    from fetal_iqa_gui.model.spec import ModelSpec
    from fetal_iqa_gui.engine.choice import EngineSettings
    first = sorted((small_dataset / synthetic.IMAGES_DIR).glob("*.mha"))[0]
    given = {}

    def make_engine(model, settings, notify=None, first_case=None):
        given["sweep"] = first_case()  # what a conversion would calibrate on
        return "engine"
    monkeypatch.setattr(scoring, "make_engine", make_engine)
    worker = cluster.CaseScorer(ModelSpec(adapter=tiny_cls_path), EngineSettings("cpu"), True, first)
    assert worker.engine == "engine" and given["sweep"].source == first


def test_a_worker_says_why_its_model_or_a_case_failed_instead_of_dying(tiny_cls_path, tmp_path):
    """A Ray actor that raises in __init__ tells the driver nothing: the worker keeps the error to say it."""
    from types import SimpleNamespace

    from fetal_iqa_gui.engine.choice import EngineSettings
    from fetal_iqa_gui.model.spec import ModelSpec
    from fetal_iqa_gui.runs import cluster
    missing = cluster.CaseScorer(ModelSpec(adapter=tmp_path / "gone.safetensors"), EngineSettings("cpu"), False)
    info = missing.describe()
    assert info.model is None and "gone.safetensors" in info.error and info.exit_code == 1  # as one process exits
    worker = cluster.CaseScorer(ModelSpec(adapter=tiny_cls_path), EngineSettings("cpu", "fp32"), False)
    assert worker.describe().model.name and not worker.describe().error
    broken = tmp_path / "broken.mha"
    broken.write_text("nonsense")
    result = worker.score(SimpleNamespace(path=broken))
    assert "broken.mha" in result.error and result.exit_code == 2 and not result.stops_run and result.rows is None
    assert "lost" in cluster._gist(RuntimeError("Traceback...\n  line 3\nWorker lost\n")) and cluster._gist(OSError()) == "OSError"
