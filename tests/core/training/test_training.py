"""Training smoke runs on tiny synthetic data: the adapter it writes loads and scores."""

import json

import numpy as np
import pytest
import torch

from fetal_iqa_gui.case.acouslic import CHALLENGE_FRAME_JSON
from fetal_iqa_gui.cli import main
from fetal_iqa_gui.model.checkpoint import load_into, read_checkpoint
from fetal_iqa_gui.model.loading import ModelSpec, load_model
from fetal_iqa_gui.model.networks import network_for
from fetal_iqa_gui.model.tower import build_visual, load_visual_weights
from fetal_iqa_gui.training.data import CaseRecord, read_cases, split_cases
from tests.support import TINY_CONFIG


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


def test_split_is_the_papers_70_10_20_by_case():
    cases = [CaseRecord(f"case-{i:02d}", f"s{i // 2}", []) for i in range(20)]
    uuids = lambda split: {k: [c.uuid for c in v] for k, v in split.items()}  # noqa: E731
    # the paper's code on these 20 uuids: np.random.default_rng(PAPER_SPLIT_SEED).permutation(uuids),
    # then the first int(0.7 n) train, up to int(0.8 n) validation, the rest test
    assert uuids(split_cases(cases)) == {
        "train": ["case-12", "case-10", "case-05", "case-07", "case-04", "case-18", "case-06", "case-09", "case-15",
                  "case-14", "case-16", "case-01", "case-13", "case-03"],
        "val": ["case-17", "case-19"],
        "test": ["case-11", "case-02", "case-00", "case-08"]}
    # by subject: the same rule over the 10 subjects (s9 s1 s5 s6 s3 s7 s0 | s2 | s4 s8), each keeping its cases
    assert uuids(split_cases(cases, by_subject=True)) == {
        "train": ["case-18", "case-19", "case-02", "case-03", "case-10", "case-11", "case-12", "case-13", "case-06",
                  "case-07", "case-14", "case-15", "case-00", "case-01"],
        "val": ["case-04", "case-05"],
        "test": ["case-08", "case-09", "case-16", "case-17"]}
    assert uuids(split_cases(cases, seed=1)) != uuids(split_cases(cases))  # the seed is what makes it the paper's


@pytest.mark.parametrize("task", ["classification", pytest.param("segmentation", marks=pytest.mark.slow)])
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
    loaded = model.module.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in state.items() if "lora_" not in name)
    visual = build_visual(TINY_CONFIG)
    load_visual_weights(visual, weights)
    trained = network_for(task, visual, TINY_CONFIG)  # as trained: peft's LoRA, unmerged
    load_into(trained, state, out, full_model=False)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the trained LoRA scores, folded into the tower as the model loaded
        np.testing.assert_allclose(model.module(images).numpy(), trained.eval()(images).numpy(), atol=1e-5)
    scores, masks = model.predict(torch.zeros(2, 3, 224, 224))
    assert scores.shape == (2,) and np.isfinite(scores).all()
    if task == "segmentation":  # the score is the mask's share of the frame
        assert masks.shape == (2, 224, 224) and np.allclose(scores, masks.mean(axis=(1, 2)))
    else:
        assert masks is None


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


def test_a_frame_cache_that_cannot_be_read_back_is_an_error_not_missing_frames(small_dataset, tmp_path,
                                                                                  monkeypatch):
    from fetal_iqa_gui.base.errors import WriteError
    from fetal_iqa_gui.training import data
    monkeypatch.setattr(data, "_read_cache", lambda folder, cases: None)  # as a disk that loses what it wrote
    with pytest.raises(WriteError, match="could not be read back"):
        data.load_frames(small_dataset, data.read_cases(small_dataset)[:1], tmp_path)


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.timeout(900)
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
    heldout = metadata["metrics"]["synthetic_heldout"]
    assert heldout["frames"] == 840  # one held-out case of the real shape
    (tn, fp), (fn, tp) = heldout["confusion_matrix"]
    assert tn + fp + fn + tp == 840 and fn + tp == heldout["positives"]
    assert heldout["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    assert f"f1 {heldout['f1']:.4f}" in printed.out  # what it prints is what it stored
    # the threshold is the one chosen on the validation case of the real shape, and the held-out figures use it
    assert metadata["metrics"]["validation_real_shape"]["frames"] == 840
    assert metadata["threshold"] == metadata["metrics"]["synthetic_heldout"]["threshold"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_train_demo_segmentation_measures_its_model_as_a_user_would(tmp_path, capfd):
    out = tmp_path / "demo_seg.safetensors"
    assert main(["train-demo", "--task", "segmentation", "--cases", "3", "--frames-per-sweep", "20",
                 "--val-cases", "1", "--heldout-cases", "1", "--epochs", "1", "--work-dir", str(tmp_path / "work"),
                 "--out", str(out)]) == 0
    printed = capfd.readouterr().out
    _, metadata = read_checkpoint(out)
    assert metadata["task"] == "segmentation" and metadata["demo"] and metadata["full_model"]
    assert metadata["config"]["decoder_filters"] == 8 and metadata["training"]["batch_size"] == 8
    challenge = metadata["metrics"]["synthetic_heldout_challenge"]
    assert challenge["cases"] == 1 and set(challenge) >= {"nae_ac", "wfss", "dice_soft", "score"}
    # through the user's own commands: the challenge's files, scored as `evaluate --challenge` scores them
    (case,) = (tmp_path / "work" / "heldout-challenge").iterdir()
    assert (case / CHALLENGE_FRAME_JSON).is_file()
    assert f"challenge score {challenge['score']:.4f} over 1 case" in printed
    assert load_model(ModelSpec(adapter=out)).is_demo


def test_train_demo_refuses_a_work_dir_holding_other_data(small_dataset, tmp_path, capsys):
    import shutil
    shutil.copytree(small_dataset, tmp_path / "train")  # a different number of cases and frames
    assert main(["train-demo", "--work-dir", str(tmp_path), "--out", str(tmp_path / "demo.safetensors")]) == 2
    assert "give another --work-dir" in capsys.readouterr().err
    assert not (tmp_path / "demo.safetensors").exists()


def test_the_demo_segmenters_loss_teaches_an_empty_frame_to_stay_empty():
    from fetal_iqa_gui.training.train import segmentation_loss
    empty = torch.zeros(2, 1, 16, 16)
    gradients = {}
    for with_bce in (False, True):
        logits = torch.full((2, 1, 16, 16), 2.0, requires_grad=True)  # a mask drawn where there is none
        segmentation_loss(logits, empty, with_bce).backward()
        gradients[with_bce] = float(logits.grad.abs().max())
    assert gradients[False] < 1e-6  # the paper's Dice alone: nothing pushes the mask away
    assert gradients[True] > 1e-4
