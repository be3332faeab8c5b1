"""The command line used as an adversary would: outputs never destroy inputs or earlier results, a
resumed run is truthful (also after `kill -9`), and bad models are one clear `error:` line.

Each test checks the exit code, the message, that no traceback was printed, and that what should
not change did not (bytes and modification times).
"""

import errno
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import fetal_iqa_gui
from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.runs.batch import DONE_DIR, SUMMARY_CSV
from fetal_iqa_gui.cli import main
from fetal_iqa_gui.base.errors import WriteError
from fetal_iqa_gui.model.checkpoint import METADATA_KEY, build_model, save_checkpoint
from fetal_iqa_gui.case.loading import load_case

from tests.support import TINY_CONFIG

CLI = [sys.executable, "-c", "import sys; from fetal_iqa_gui.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Three small synthetic cases (24 frames each)."""
    folder = tmp_path_factory.mktemp("sweeps")
    synthetic.write_dataset(folder, cases=3, seed=5, frames_per_sweep=4)
    return sorted((folder / synthetic.IMAGES_DIR).glob("*.mha"))


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model("classification", TINY_CONFIG)


def score(capsys, model, *args):
    """`fetal-iqa score ARGS` with a tiny model on the CPU: (exit code, stdout, stderr)."""
    code = main(["score", *map(str, args), "--adapter", str(model), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def snapshot(*folders) -> dict:
    """Every file under the folders with its bytes and modification time."""
    return {path: (path.read_bytes(), path.stat().st_mtime_ns)
            for folder in folders for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def copy_as(source: Path, *targets: Path) -> list[Path]:
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    return list(targets)


def markers(out_dir: Path, finished: bool = True) -> dict[str, dict]:
    found = {}
    for path in (out_dir / DONE_DIR).glob("*.json"):
        try:
            marker = json.loads(path.read_text())
        except ValueError:  # being replaced right now
            continue
        if marker["finished"] == finished:
            found[marker["case"]] = marker
    return found


def summary_files(out_dir: Path) -> list[str]:
    lines = (out_dir / SUMMARY_CSV).read_text().splitlines()
    return [line.split(",")[0] for line in lines[1:]]


# -- outputs never land on an input ----------------------------------------------------------

def test_an_output_onto_an_input_is_refused_even_with_force(sweeps, tiny_cls_path, tmp_path, capsys):
    sweep = copy_as(sweeps[0], tmp_path / "V.mha")[0]
    (tmp_path / "link.csv").symlink_to(sweep)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "V_scores.csv").symlink_to(sweep)  # the folder's CSV for V is the sweep itself
    before = snapshot(tmp_path)
    for target in (["--out", sweep], ["--out", tmp_path / "link.csv"], ["--out-dir", tmp_path / "out"]):
        for force in ([], ["--force"]):
            code, out, err = score(capsys, tiny_cls_path, sweep, *target, *force)
            assert code == 2, (target, force)
            assert "error: Will not write" in err and "it is one of the inputs" in err
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["V_scores.csv"]  # no summary, no markers


def test_outputs_inside_an_input_dicom_folder_are_refused(tiny_cls_path, tmp_path, capsys):
    series = tmp_path / "series"
    series.mkdir()
    (series / "slice1.dcm").write_bytes(b"DICM")
    out = tmp_path / "out"
    for target in (["--out-dir", series / "out"], ["--out", series / "s.csv"],
                   ["--out-dir", out, "--export-best", series], ["--out-dir", out, "--challenge-output", series / "c"]):
        code, _, err = score(capsys, tiny_cls_path, series, *target, "--force")
        assert code == 2 and "inside the input DICOM folder" in err, target
    assert os.listdir(series) == ["slice1.dcm"] and not out.exists()


def test_an_export_that_would_take_an_inputs_name_is_refused(sweeps, tiny_cls_path, tmp_path, capsys):
    case = copy_as(sweeps[0], tmp_path / "a.mha")[0]
    picture = tmp_path / "best" / "a_frame000_sweep1.png"  # a frame exported earlier, scored now as an input
    picture.parent.mkdir()
    picture.write_bytes(b"not really a PNG")
    before = snapshot(tmp_path)
    code, _, err = score(capsys, tiny_cls_path, case, picture, "--out-dir", tmp_path / "out",
                         "--export-best", picture.parent, "--force")
    assert code == 2 and "an exported frame would take its name" in err
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


# -- nothing replaced without --force ---------------------------------------------------------

def test_an_existing_out_is_kept_unless_force(sweeps, tiny_cls_path, tmp_path, capsys):
    existing = tmp_path / "existing.csv"
    existing.write_text("my own notes\n")
    before = snapshot(tmp_path)
    code, _, err = score(capsys, tiny_cls_path, sweeps[0], "--out", existing)
    assert code == 2 and "exists already" in err and "--force" in err
    assert snapshot(tmp_path) == before
    code, _, err = score(capsys, tiny_cls_path, sweeps[0], "--out", existing, "--force")
    assert code == 0 and existing.read_text().startswith("frame,sweep,padding,score,good\n")


def test_a_case_finished_with_another_model_is_kept_unless_force(sweeps, tiny_cls_path, tiny_model, tmp_path,
                                                                  capsys):
    other = tmp_path / "other.safetensors"
    save_checkpoint(tiny_model, other, {"config": TINY_CONFIG, "threshold": 0.25}, full_model=True)
    out = tmp_path / "out"
    assert score(capsys, tiny_cls_path, sweeps[0], "--out-dir", out)[0] == 0
    before = snapshot(out)
    code, _, err = score(capsys, other, sweeps[0], "--out-dir", out)
    assert code == 2 and "finished there earlier" in err and "with another model" in err and "--force" in err
    assert snapshot(out) == before
    code, _, err = score(capsys, other, sweeps[0], "--out-dir", out, "--force")
    assert code == 0 and "skipping" not in err
    assert markers(out)[sweeps[0].stem]["threshold"] == 0.25  # the new model's results replaced the old
    csv_file = next(out.glob("*_scores.csv"))
    # a file with a case's output name that no marker of this folder lists is not this run's to replace
    for marker in (out / DONE_DIR).iterdir():
        marker.unlink()
    before = snapshot(out)
    code, _, err = score(capsys, other, sweeps[0], "--out-dir", out)
    assert code == 2 and "exists already" in err and csv_file.name in err
    assert snapshot(out) == before


def test_force_redoes_finished_cases(sweeps, tiny_cls_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert score(capsys, tiny_cls_path, sweeps[0], "--out-dir", out)[0] == 0
    csv_file = next(out.glob("*_scores.csv"))
    first = csv_file.stat().st_mtime_ns
    time.sleep(0.01)
    code, _, err = score(capsys, tiny_cls_path, sweeps[0], "--out-dir", out, "--force")
    assert code == 0 and "skipping" not in err and csv_file.stat().st_mtime_ns != first


# -- case names ----------------------------------------------------------------------------

def test_files_sharing_a_stem_are_scored_apart_and_clashing_names_refused(sweeps, tiny_cls_path, tmp_path, capsys):
    copy_as(sweeps[0], tmp_path / "in" / "case.mha", tmp_path / "in" / "case.v2.mha")
    code, _, err = score(capsys, tiny_cls_path, tmp_path / "in", "--out-dir", tmp_path / "out")
    assert code == 0 and "skipping" not in err
    assert sorted(p.name for p in (tmp_path / "out").glob("*_scores.csv")) == ["case.v2_scores.csv", "case_scores.csv"]
    assert sorted(set(summary_files(tmp_path / "out"))) == ["case.mha", "case.v2.mha"]

    clash = copy_as(sweeps[0], tmp_path / "clash" / "case.mha", tmp_path / "clash" / "case.nii.gz")
    before = snapshot(tmp_path / "clash")
    for inputs in ([tmp_path / "clash"], [clash[0], tmp_path / "in" / "case.mha"]):
        code, _, err = score(capsys, tiny_cls_path, *inputs, "--out-dir", tmp_path / "out2")
        assert code == 2 and "would both write outputs named 'case'" in err
    assert snapshot(tmp_path / "clash") == before and not (tmp_path / "out2").exists()


def test_hidden_and_odd_names_stay_inside_the_output_folders(sweeps, tiny_cls_path, tmp_path, capsys):
    inputs = tmp_path / "in"
    copy_as(sweeps[0], inputs / ".hidden.mha", inputs / "a\\b.mha")
    out, best, challenge = tmp_path / "out", tmp_path / "best", tmp_path / "challenge"
    code, _, err = score(capsys, tiny_cls_path, inputs, "--out-dir", out, "--export-best", best,
                         "--challenge-output", challenge)
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*_scores.csv")) == ["a_b_scores.csv", "hidden_scores.csv"]
    assert sorted(p.name for p in challenge.iterdir()) == ["a_b", "hidden"]
    assert sorted({p.name.split("_frame")[0] for p in best.iterdir()}) == ["a_b", "hidden"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "challenge", "in", "out"]
    # '.hidden.mha' and 'hidden.mha' would write the same names
    copy_as(sweeps[0], inputs / "hidden.mha")
    code, _, err = score(capsys, tiny_cls_path, inputs, "--out-dir", tmp_path / "out2")
    assert code == 2 and "would both write outputs named 'hidden'" in err


# -- failures while writing --------------------------------------------------------------------

def test_a_read_only_output_folder_is_said_before_scoring(sweeps, tiny_cls_path, tmp_path, capsys, monkeypatch):
    best = tmp_path / "best"
    best.mkdir()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # tests run as root, whom chmod does not stop
        if str(path).startswith(str(best)) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", read_only)
    code, out, err = score(capsys, tiny_cls_path, *sweeps, "--out-dir", tmp_path / "out", "--export-best", best)
    assert code == 1 and f"Could not write '{best}': permission denied" in err
    assert "best sweep" not in out and not list((tmp_path / "out").glob("*_scores.csv")) and not os.listdir(best)


def test_an_export_that_failed_is_retried_on_the_rerun(sweeps, tiny_cls_path, tmp_path, capsys, monkeypatch):
    out, best = tmp_path / "out", tmp_path / "best"

    def full_disk(files, overwrite=False):
        raise WriteError(next(iter(files))[0], "the disk is full")
    monkeypatch.setattr(fetal_iqa_gui.review.export, "write_together", full_disk)
    code, _, err = score(capsys, tiny_cls_path, *sweeps, "--out-dir", out, "--export-best", best)
    assert code == 1 and err.count("the disk is full") == 3 and "3 of 3 inputs failed" in err
    assert len(list(out.glob("*_scores.csv"))) == 3 and not markers(out) and summary_files(out) == []
    monkeypatch.undo()
    code, _, err = score(capsys, tiny_cls_path, *sweeps, "--out-dir", out, "--export-best", best)
    assert code == 0 and "skipping" not in err
    assert len(markers(out)) == 3 and len(list(best.glob("*.png"))) == 3 * 6  # each sweep's best
    assert sorted(set(summary_files(out))) == [s.name for s in sweeps]


def test_an_empty_scores_csv_is_not_finished(sweeps, tiny_cls_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert score(capsys, tiny_cls_path, *sweeps, "--out-dir", out)[0] == 0
    emptied = out / f"{sweeps[0].stem}_scores.csv"
    emptied.write_bytes(b"")
    others = {p: v for p, v in snapshot(out).items() if p.name.endswith("_scores.csv") and p != emptied}
    code, _, err = score(capsys, tiny_cls_path, *sweeps, "--out-dir", out)
    assert code == 0 and err.count("skipping") == 2 and f"skipping {sweeps[0].name}" not in err
    assert emptied.stat().st_size > 0
    assert {p: v for p, v in snapshot(out).items() if p in others} == others


def test_the_summary_lists_every_finished_case_not_only_this_runs(sweeps, tiny_cls_path, tmp_path, capsys):
    out = tmp_path / "out"
    for sweep in sweeps[:2]:
        assert score(capsys, tiny_cls_path, sweep, "--out-dir", out)[0] == 0
    assert sorted(set(summary_files(out))) == [s.name for s in sweeps[:2]]


def test_kill_9_then_rerun_finishes_every_case_and_keeps_what_was_finished(sweeps, tiny_cls_path, tmp_path, capsys):
    tmp_path = tmp_path.resolve()  # markers list outputs with every symlink followed
    out, best, challenge = tmp_path / "out", tmp_path / "best", tmp_path / "challenge"
    args = ["score", *map(str, sweeps), "--out-dir", str(out), "--export-best", str(best),
            "--challenge-output", str(challenge), "--adapter", str(tiny_cls_path), "--device", "cpu", "--no-cache"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(fetal_iqa_gui.__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen(CLI + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not markers(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    process.wait()
    finished = markers(out)
    assert 1 <= len(finished) < len(sweeps), "the kill should land after the first case and before the last"
    kept = {path: (Path(path).read_bytes(), Path(path).stat().st_mtime_ns)
            for marker in finished.values() for path in marker["outputs"]}

    code = main(args)  # the rerun, in this process: one start of Python and torch is enough
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    assert err.count("skipping") == len(finished)
    done = markers(out)
    assert sorted(done) == [s.stem for s in sweeps]
    for sweep in sweeps:
        outputs = [Path(p) for p in done[sweep.stem]["outputs"]]
        assert all(p.stat().st_size > 0 for p in outputs)
        assert {p.parent for p in outputs} == {out, best, challenge / sweep.stem}
    sweeps_per_case = {s.name: len(load_case(s).layout.sweeps) for s in sweeps}
    rows = summary_files(out)
    assert {name: rows.count(name) for name in sweeps_per_case} == sweeps_per_case
    assert {path: (Path(path).read_bytes(), Path(path).stat().st_mtime_ns) for path in kept} == kept


# -- bad models ------------------------------------------------------------------------------

def test_a_model_whose_output_is_nan_is_an_error_not_a_hang(sweeps, tiny_model, tmp_path, capsys):
    model = build_model("classification", TINY_CONFIG)
    model.load_state_dict(tiny_model.state_dict())
    with torch.no_grad():
        model.classifier.bias.fill_(math.nan)
    path = tmp_path / "nan.safetensors"
    save_checkpoint(model, path, {"config": TINY_CONFIG}, full_model=True)
    result = {}
    run = threading.Thread(target=lambda: result.update(code=main(
        ["score", *map(str, sweeps), "--out-dir", str(tmp_path / "out"), "--adapter", str(path), "--device", "cpu",
         "--no-cache"])), daemon=True)
    run.start()
    run.join(120)
    assert not run.is_alive(), "score hung on NaN scores"  # it used to loop forever at 100 %
    err = capsys.readouterr().err
    assert result["code"] == 1 and "Traceback" not in err
    assert "error: Cannot score with this model: it gives no number (NaN)" in err
    assert err.count("error:") == 1  # the run stops: every case would fail the same way
    assert not list((tmp_path / "out").glob("*_scores.csv"))


def _with_vision(**changes):
    return dict(TINY_CONFIG, vision_cfg=dict(TINY_CONFIG["vision_cfg"], **changes))


@pytest.mark.parametrize("metadata, message", [
    ({"threshold": "abc"}, "threshold is 'abc', not a number from 0 to 1"),
    ({"threshold": None}, "threshold is None, not a number"),
    ({"threshold": [0.5]}, "threshold is [0.5], not a number"),
    ({"threshold": math.nan}, "threshold is nan, not a number"),
    ({"threshold": 7}, "threshold is 7, not a number from 0 to 1"),
    ({"format_version": "1"}, "format_version is '1', not a whole number"),
    ({"name": ["a", "list"]}, "name is ['a', 'list'], not a str"),
    ({"config": _with_vision(patch_size=0)}, "'patch_size' is 0, not a whole number"),
    ({"config": _with_vision(width="wide")}, "'width' is 'wide', not a whole number"),
    ({"config": _with_vision(colour="blue")}, "vision_cfg has keys open_clip does not know (colour)"),
    ({"config": _with_vision(head_width=24)}, "width 32 is not a multiple of its head_width 24"),
    ({"config": _with_vision(patch_size=448)}, "patch_size is larger than its image_size"),
    ({"config": dict(TINY_CONFIG, embed_dim=-1)}, "'embed_dim' is -1"),
    ({"config": _with_vision(pos_embed_type="spiral")}, "open_clip cannot build a tower from its config"),
])
def test_bad_model_metadata_is_one_clear_error(tiny_model, sweeps, tmp_path, capsys, metadata, message):
    path = tmp_path / "bad.safetensors"
    document = {"task": "classification", "full_model": True, "format_version": 1, "config": TINY_CONFIG, **metadata}
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(path),
              metadata={METADATA_KEY: json.dumps(document)})
    code, out, err = score(capsys, path, sweeps[0], "--out-dir", tmp_path / "out")
    assert code == 1 and err.startswith("error: Cannot load") and message in err, err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_metadata_that_is_not_an_object_and_a_bad_config_file_are_clear_errors(tiny_cls_path, sweeps, tmp_path,
                                                                                  capsys):
    path = tmp_path / "list.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={METADATA_KEY: json.dumps([1, 2])})
    code, _, err = score(capsys, path, sweeps[0])
    assert code == 1 and "error: Cannot load 'list.safetensors': its metadata is not a JSON object" in err
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_with_vision(patch_size=0)))
    code, _, err = score(capsys, tiny_cls_path, sweeps[0], "--config", config)
    assert code == 1 and "error: Cannot load 'config.json': its 'patch_size' is 0" in err


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused_without_advice_to_load_it_unsafely(tiny_model, sweeps, tmp_path, capsys):
    adapter = tmp_path / "adapter.safetensors"  # adapter only: the weights file is read too
    save_checkpoint(tiny_model, adapter, {"config": TINY_CONFIG})
    evil = {"state_dict": {"visual.proj": torch.zeros(2)}, "payload": _Evil()}
    torch.save(evil, tmp_path / "evil.pt")
    torch.save(evil, tmp_path / "evil_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(evil, tmp_path / "evil.ckpt")
    for args in (["--adapter", adapter, "--weights", tmp_path / "evil.pt"],
                 ["--adapter", adapter, "--weights", tmp_path / "evil_legacy.pt"],
                 ["--adapter", tmp_path / "evil.ckpt"]):
        code = main(["score", str(sweeps[0]), *map(str, args), "--device", "cpu"])
        out, err = capsys.readouterr()
        assert code == 1 and "Traceback" not in err and "pickled code ran" not in out
        assert "it holds a Python object of type print that fetal-iqa does not load" in err, err
        assert "weights_only" not in err and "safe_globals" not in err and "trust" not in err
