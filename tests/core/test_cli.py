"""The command line: info, synth, score, measure, evaluate; bad input gets exit code 2 and a message."""

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui import synthetic
from fetal_iqa_gui.cli import main


def test_info_prints_each_file_and_reports_bad_ones(small_dataset, tmp_path, capsys):
    good = next((small_dataset / synthetic.IMAGES_DIR).glob("*.mha"))
    bad = tmp_path / "broken.mha"
    bad.write_text("nonsense")
    assert main(["info", str(bad), str(good)]) == 2
    out, err = capsys.readouterr()
    assert "broken.mha" in err and "Traceback" not in err
    assert "frames: 144" in out and "744 x 562 px" in out and "spacing: 0.280" in out
    assert "sweeps: 1" in out and "padding" in out


def test_info_counts_one_image_in_the_singular(tmp_path, capsys):
    import cv2
    picture = tmp_path / "frame.png"
    cv2.imwrite(str(picture), np.full((40, 60), 80, np.uint8))
    assert main(["info", str(picture)]) == 0
    assert "frames: 1 (1 image, 0 padding)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["info", "synth", "score", "measure", "gui", "demo", "train", "evaluate",
                                     "train-demo", "doctor"])
def test_every_command_says_what_it_does(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    description = capsys.readouterr().out.split("\n\n")[1]  # the paragraph after the usage
    assert not description.startswith(("positional arguments", "options")) and description.rstrip().endswith(".")


def test_synth_writes_the_challenge_layout(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--cases", "1", "--seed", "4", "--frames-per-sweep", "12"]) == 0
    assert len(list((tmp_path / synthetic.IMAGES_DIR).glob("*.mha"))) == 1
    assert (tmp_path / synthetic.CIRCUMFERENCES_CSV).exists()


def test_synth_on_a_full_disk_says_so_and_leaves_no_volume(tmp_path, capsys, monkeypatch):
    def full_disk(image, path, compress):
        open(path, "wb").write(b"ObjectType = Image")
        raise RuntimeError(f"ITK ERROR: MetaImageIO(0x1): File cannot be written: {path}\nReason: No space left on device")
    monkeypatch.setattr(sitk, "WriteImage", full_disk)
    assert main(["synth", str(tmp_path / "out"), "--frames-per-sweep", "10"]) == 1
    assert "the disk is full" in capsys.readouterr().err
    assert not list((tmp_path / "out").rglob("*.mha"))


def test_score_writes_csv_summary_and_challenge_output(small_dataset, tiny_cls_path, tmp_path, capsys):
    images = small_dataset / synthetic.IMAGES_DIR
    broken = tmp_path / "in" / "zz-broken.mha"
    broken.parent.mkdir()
    broken.write_text("nonsense")
    args = ["score", str(images), str(broken), "--adapter", str(tiny_cls_path), "--device", "cpu",
            "--out-dir", str(tmp_path / "out"), "--challenge-output", str(tmp_path / "challenge"),
            "--export-best", str(tmp_path / "best")]
    assert main(args) == 2  # one input failed, the others were scored
    out, err = capsys.readouterr()
    assert "zz-broken.mha" in err
    csvs = sorted((tmp_path / "out").glob("*_scores.csv"))
    assert len(csvs) == 4
    rows = list(csv.DictReader(open(csvs[0])))
    assert list(rows[0]) == ["frame", "sweep", "padding", "score", "good"] and len(rows) == 144
    assert all(r["score"] == "" for r in rows if r["padding"] == "1")
    assert (tmp_path / "out" / "summary.csv").exists()
    assert len(list((tmp_path / "challenge").iterdir())) == 4
    assert list((tmp_path / "best").glob("*.json"))
    assert "best sweep 1: frame" in out
    # resumable: a second run skips the finished cases
    assert main(args[:2] + args[3:]) == 0
    assert "skipping" in capsys.readouterr().err


def test_score_can_name_the_sweep_in_sidecars_by_file_name_only(small_dataset, tiny_cls_path, tmp_path, capsys):
    case = next((small_dataset / synthetic.IMAGES_DIR).glob("*.mha"))
    args = ["score", str(case), "--adapter", str(tiny_cls_path), "--device", "cpu", "--export-best"]
    assert main(args + [str(tmp_path / "full")]) == 0
    assert main(args + [str(tmp_path / "private"), "--sidecar-name-only"]) == 0
    full = json.loads(next((tmp_path / "full").glob("*.json")).read_text())
    private = json.loads(next((tmp_path / "private").glob("*.json")).read_text())
    assert full["source"] == str(case.resolve()) and private["source"] == case.name


def test_measure_prints_ac_and_refuses_empty_masks(tmp_path, capsys):
    import cv2
    mask = np.zeros((400, 400), np.uint8)
    cv2.ellipse(mask, ((200, 200), (200, 150), 0), 255, -1)
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    assert main(["measure", str(tmp_path / "mask.png")]) == 0
    printed = float(capsys.readouterr().out.split()[1])
    assert printed == pytest.approx(154.7, rel=0.01)  # Ramanujan on semi-axes 100 x 75 px at 0.28 mm
    volume = np.zeros((3, 50, 50), np.uint8)
    volume[0, 10:20, 10:20] = 1
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "masks.mha"))
    assert main(["measure", str(tmp_path / "masks.mha")]) == 2
    assert main(["measure", str(tmp_path / "masks.mha"), "--frame", "0", "--spacing", "0.5"]) == 0
    capsys.readouterr()


def test_evaluate_challenge_scores_perfect_predictions(small_dataset, tmp_path, capsys):
    from fetal_iqa_gui.export import write_challenge_output
    from fetal_iqa_gui.training.data import read_cases
    for case in read_cases(small_dataset):
        gt = sitk.GetArrayFromImage(sitk.ReadImage(str(small_dataset / synthetic.MASKS_DIR / f"{case.uuid}.mha")))
        frame = int(np.flatnonzero((gt == 1).reshape(len(gt), -1).any(1))[0]) if (gt == 1).any() else -1
        write_challenge_output(tmp_path / "pred", case.uuid, frame, gt[frame] > 0 if frame >= 0 else None,
                               gt.shape, (0.28, 0.28))
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--challenge", str(tmp_path / "pred"), "--ground-truth", str(small_dataset),
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mean"]["wfss"] == 1.0 and report["mean"]["dice_soft"] == pytest.approx(1.0)
    assert "challenge score" in capsys.readouterr().out


def test_evaluate_challenge_refuses_what_the_evaluator_refuses(small_dataset, tmp_path, capsys):
    from fetal_iqa_gui.acouslic import CHALLENGE_FRAME_JSON, CHALLENGE_MASK
    from fetal_iqa_gui.export import write_challenge_output
    from fetal_iqa_gui.training.data import read_cases
    case = read_cases(small_dataset)[0]
    gt = sitk.GetArrayFromImage(sitk.ReadImage(str(small_dataset / synthetic.MASKS_DIR / f"{case.uuid}.mha")))
    folder = write_challenge_output(tmp_path / "pred", case.uuid, 3, np.ones(gt.shape[1:]), gt.shape, (0.28, 0.28))
    (folder / CHALLENGE_FRAME_JSON).write_text(str(len(gt)))
    args = ["evaluate", "--challenge", str(tmp_path / "pred"), "--ground-truth", str(small_dataset)]
    assert main(args) == 2
    assert "outside the case's" in capsys.readouterr().err
    (folder / CHALLENGE_FRAME_JSON).write_text("3")
    sitk.WriteImage(sitk.GetImageFromArray(np.full(gt.shape, 2, np.uint8)), str(folder / CHALLENGE_MASK))
    assert main(args) == 2
    assert "not a 0/1 mask" in capsys.readouterr().err


def test_evaluate_challenge_needs_only_the_masks_and_the_ac_table(small_dataset, tmp_path, capsys):
    import shutil

    from fetal_iqa_gui.acouslic import CIRCUMFERENCES_CSV, IMAGES_DIR, MASKS_DIR
    from fetal_iqa_gui.export import write_challenge_output
    from fetal_iqa_gui.training.data import read_cases
    ground_truth = tmp_path / "gt"  # what the challenge's ground truth holds: no images folder
    shutil.copytree(small_dataset / MASKS_DIR, ground_truth / MASKS_DIR)
    (ground_truth / CIRCUMFERENCES_CSV).parent.mkdir(parents=True)
    shutil.copy(small_dataset / CIRCUMFERENCES_CSV, ground_truth / CIRCUMFERENCES_CSV)
    assert not (ground_truth / IMAGES_DIR).exists()
    for case in read_cases(small_dataset):
        write_challenge_output(tmp_path / "pred", case.uuid, -1, None, (144, 562, 744), (0.28, 0.28))
    assert main(["evaluate", "--challenge", str(tmp_path / "pred"), "--ground-truth", str(ground_truth)]) == 0
    assert "challenge score" in capsys.readouterr().out
