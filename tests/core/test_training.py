"""Training smoke runs on tiny synthetic data: the adapter it writes loads and scores."""

import json

import numpy as np
import pytest
import torch

from fetal_iqa_gui.cli import main
from fetal_iqa_gui.model.checkpoint import read_checkpoint
from fetal_iqa_gui.model.loading import ModelSpec, load_model
from fetal_iqa_gui.model.tower import build_visual
from fetal_iqa_gui.training.data import PAPER_SPLIT_SEED, read_cases, split_cases
from tests.conftest import TINY_CONFIG


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    config = folder / "tiny_config.json"
    config.write_text(json.dumps(TINY_CONFIG))
    torch.manual_seed(0)
    visual = build_visual(TINY_CONFIG)
    weights = folder / "tiny_weights.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.visual.{k}": v for k, v in visual.state_dict().items()}}, weights)
    return config, weights


def test_split_is_70_10_20_by_case_and_deterministic(small_dataset):
    cases = read_cases(small_dataset) * 5  # 20 "cases"
    for i, case in enumerate(cases):
        cases[i] = type(case)(f"{case.uuid}-{i}", f"s{i // 2}", case.ac_mm)
    split = split_cases(cases)
    assert [len(split[k]) for k in ("train", "val", "test")] == [14, 2, 4]
    assert split == split_cases(cases, PAPER_SPLIT_SEED)
    by_subject = split_cases(cases, by_subject=True)
    subjects = [{c.subject_id for c in by_subject[k]} for k in ("train", "val", "test")]
    assert not (subjects[0] & subjects[1] or subjects[0] & subjects[2] or subjects[1] & subjects[2])


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_lora_training_writes_an_adapter_that_loads_and_scores(small_dataset, tiny_files, tmp_path, task, capsys):
    config, weights = tiny_files
    out = tmp_path / f"{task}.safetensors"
    assert main(["train", str(small_dataset), "--out", str(out), "--task", task, "--weights", str(weights),
                 "--config", str(config), "--epochs", "1", "--max-steps", "2", "--batch-size", "4",
                 "--device", "cpu"]) == 0
    state, metadata = read_checkpoint(out)
    assert metadata["task"] == task and not metadata["full_model"]
    assert metadata["training"]["best_epoch"] == 1 and "validation" in metadata["metrics"]
    assert len(metadata["split"]["train"]) == 2
    if task == "classification":
        assert all("lora_" in k or k.startswith("classifier.") for k in state)
    else:
        assert any(k.startswith("decoder.") for k in state)
    model = load_model(ModelSpec(weights=weights, adapter=out))
    scores, masks = model.predict(torch.zeros(2, 3, 224, 224))
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert (masks is not None) == (task == "segmentation")


def test_train_demo_says_how_much_disk_it_needs_before_starting(tmp_path, capsys, monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**11, 10**11 - 10**9, 10**9))
    assert main(["train-demo", "--cases", "240", "--frames-per-sweep", "40", "--val-cases", "8", "--heldout-cases", "8",
                 "--work-dir", str(tmp_path), "--out", str(tmp_path / "demo.safetensors")]) == 2
    error = capsys.readouterr().err  # 6 sweeps x (240 x 40 + 16 x 140) frames
    assert "needs about 18.5 GB of free disk space" in error and "there are 1.0 GB" in error
    assert not any(tmp_path.iterdir())


def test_frames_are_cached_on_disk_and_a_damaged_cache_is_rebuilt(small_dataset, tmp_path):
    from fetal_iqa_gui.training.data import load_frames
    cases = read_cases(small_dataset)[:2]
    in_memory = load_frames(small_dataset, cases, None, all_sweeps=True)
    cached = load_frames(small_dataset, cases, tmp_path, all_sweeps=True)
    assert isinstance(cached.images, np.memmap)  # a split need not fit in memory
    assert np.array_equal(cached.images, in_memory.images) and np.array_equal(cached.masks, in_memory.masks)
    assert np.array_equal(cached.classes, in_memory.classes) and len(in_memory) == 2 * 6 * 24
    assert in_memory.labels.sum() == (in_memory.masks.reshape(len(in_memory), -1).max(1) > 0).sum() > 0
    folder, = tmp_path.iterdir()
    with open(folder / "images.npy", "r+b") as file:  # a cache cut short, as by a full disk
        file.truncate(1000)
    again = load_frames(small_dataset, cases, tmp_path, all_sweeps=True)
    assert np.array_equal(again.images, in_memory.images)
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # rebuilt in place, nothing left over


def test_interrupted_training_resumes(small_dataset, tiny_files, tmp_path):
    from fetal_iqa_gui.training.data import load_frames
    from fetal_iqa_gui.training.train import TrainSettings, train
    cases = split_cases(read_cases(small_dataset))
    frames = {k: load_frames(small_dataset, cases[k], None) for k in ("train", "val")}
    out = tmp_path / "model.safetensors"
    settings = TrainSettings(epochs=2, batch_size=4, max_steps=1, full_finetune=True, cosine_lr=True,
                             negatives_per_positive=1.5, select_by="val_f1")  # train-demo's settings
    calls = []

    def interrupt(epoch, step, steps, loss, elapsed):
        calls.append(epoch)
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(settings, TINY_CONFIG, frames["train"], frames["val"], out, progress=interrupt)
    assert out.with_suffix(".train-state.pt").exists() and not out.exists()
    resumed = []
    train(settings, TINY_CONFIG, frames["train"], frames["val"], out, progress=lambda e, *a: resumed.append(e))
    assert resumed == [1] and out.exists()  # only the second epoch ran again


def test_evaluate_reports_frame_metrics_and_each_sweeps_best_frame(small_dataset, tiny_cls_path, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(small_dataset), "--adapter", str(tiny_cls_path), "--split", "all",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    frame_level = report["frame_level"]
    assert {"accuracy", "f1", "precision", "recall", "specificity", "roc_auc", "confusion_matrix"} <= set(frame_level)
    assert sum(map(sum, frame_level["confusion_matrix"])) == frame_level["frames"]
    cases_with_ac = read_cases(small_dataset)
    expected_sweeps = sum(ac is not None for case in cases_with_ac for ac in case.ac_mm)
    assert len(report["sweeps"]) == expected_sweeps
    assert all(1 <= s["sweep"] <= 6 for s in report["sweeps"])
    assert "f1 " in capsys.readouterr().out


def test_train_demo_regenerates_a_labelled_demo_model_with_its_heldout_f1(tmp_path, capfd):
    out = tmp_path / "demo.safetensors"
    assert main(["train-demo", "--cases", "3", "--frames-per-sweep", "20", "--val-cases", "1", "--heldout-cases", "1",
                 "--epochs", "2", "--out", str(out)]) == 0
    printed = capfd.readouterr()
    assert "f1" in printed.out
    assert "epoch 2/2" in printed.err and "100.0%" in printed.err  # one progress bar over all epochs
    _, metadata = read_checkpoint(out)
    assert metadata["demo"] and metadata["full_model"]
    assert load_model(ModelSpec(adapter=out)).is_demo  # labelled as the demo model wherever it is used
    assert 0.0 <= metadata["metrics"]["synthetic_heldout"]["f1"] <= 1.0
    assert metadata["metrics"]["synthetic_heldout"]["frames"] == 840  # one held-out case of the real shape
    # the threshold is the one chosen on the validation case of the real shape, and the held-out figures use it
    assert metadata["metrics"]["validation_real_shape"]["frames"] == 840
    assert metadata["threshold"] == metadata["metrics"]["synthetic_heldout"]["threshold"]


def test_train_demo_refuses_a_work_dir_holding_other_data(small_dataset, tmp_path, capsys):
    import shutil
    shutil.copytree(small_dataset, tmp_path / "train")  # a different number of cases and frames
    assert main(["train-demo", "--work-dir", str(tmp_path), "--out", str(tmp_path / "demo.safetensors")]) == 2
    assert "give another --work-dir" in capsys.readouterr().err
    assert not (tmp_path / "demo.safetensors").exists()
