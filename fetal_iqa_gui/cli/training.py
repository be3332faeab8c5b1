"""`fetal-iqa train`, `evaluate` and `train-demo`: thin wrappers over the training core."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .helptext import add_command
from .progress import ProgressBar
from .options import WEIGHTS_HELP, add_model_options, bounded_int, positive_float
from .score import say_error

DEMO_DISK_PER_FRAME = 260_000  # bytes: a compressed synthetic frame (~150 kB) and its cached 224 x 224 image and mask

# Small and shallow: a ViT this size trained from scratch on a few thousand frames learns in
# minutes at 3 layers, while at 12 its output stays nearly independent of the input for hundreds
# of steps. Average pooling of the patch tokens (not the class token) made it learn at all.
DEMO_CONFIG = {"embed_dim": 64, "vision_cfg": {"image_size": 224, "layers": 3, "width": 96, "head_width": 32,
                                               "patch_size": 16, "pool_type": "avg"}}


@dataclass(frozen=True)
class DemoRecipe:
    """How each demo model is trained: its config and what a default `train-demo` run does."""

    config: dict
    cases: int
    epochs: int
    batch_size: int
    select_by: str
    seg_bce: bool = False


DEMO_RECIPES = {
    "classification": DemoRecipe(DEMO_CONFIG, cases=240, epochs=6, batch_size=32, select_by="val_f1"),
    # The decoder at full resolution is what costs on a CPU: at the paper's width (32 filters) a
    # step of 32 frames took 34 s on 2 cores, at 8 filters 6 s, and 8 frames 0.9 s (the
    # activations stay in cache). Epochs are picked by validation loss, as in the paper.
    "segmentation": DemoRecipe({**DEMO_CONFIG, "decoder_filters": 8}, cases=120, epochs=1, batch_size=8,
                               select_by="val_loss", seg_bce=True),
}


def add_training_commands(commands) -> None:
    train = add_command(commands, "train", "train FetalCLIP_CLS or _SEG on an ACOUSLIC-AI-layout folder",
                        "Train FetalCLIP_CLS (frame quality) or FetalCLIP_SEG (abdomen mask) as in the paper: LoRA "
                        "adapters on FetalCLIP's tower and a new head, on the cases of an ACOUSLIC-AI-layout folder. "
                        "Writes one adapter file to score with.",
                        (("FetalCLIP_CLS on the challenge's training data (FetalCLIP's weights in the model folder)",
                          "train acouslic/train --out cls.safetensors"),
                         ("FetalCLIP_SEG, each subject kept in one split",
                          "train acouslic/train --out seg.safetensors --task segmentation --split-by-subject"),
                         ("a smoke run: a few steps of one epoch", "train acouslic/train --out smoke.safetensors "
                          "--epochs 1 --max-steps 5")))
    train.add_argument("data_dir", type=Path, metavar="DATA_DIR",
                       help="ACOUSLIC-AI-layout folder (images/, masks/, circumferences/)")
    train.add_argument("--out", type=Path, required=True, help="the adapter to write (.safetensors)")
    train.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                       help="classification: frame quality (FetalCLIP_CLS); segmentation: the abdomen's mask "
                       "(FetalCLIP_SEG)")
    train.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    train.add_argument("--config", type=Path, help="open_clip config JSON (default FetalCLIP's)")
    train.add_argument("--from-scratch", action="store_true", help="random tower, all weights trained (small configs)")
    train.add_argument("--epochs", type=bounded_int(1), default=5, help="passes over the training split")
    train.add_argument("--batch-size", type=bounded_int(1, 4096), default=32, help="frames per training step")
    train.add_argument("--lr", type=positive_float, default=3e-4, help="learning rate")
    train.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=0, help="training seed (the split uses the paper's seed)")
    train.add_argument("--split-by-subject", action="store_true", help="keep each subject in one split")
    train.add_argument("--all-sweeps", action="store_true", help="also sweeps without an AC value")
    train.add_argument("--max-steps", type=bounded_int(1), help="steps per epoch at most (smoke runs)")
    train.add_argument("--select-by", choices=("val_loss", "val_f1"), default="val_loss",
                       help="how the best epoch is chosen (the paper: validation loss)")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where to train; auto: cuda where a CUDA GPU is available, else cpu")
    train.set_defaults(handler=cmd_train)

    evaluate = add_command(commands, "evaluate", "frame-level metrics of a model, or the challenge's scores",
                           "Measure a model on a split of an ACOUSLIC-AI-layout folder (frame-level F1, precision, "
                           "recall, and how often each sweep's best frame is a good one), or score predictions in "
                           "the challenge's output format against its ground truth.",
                           (("the demo model on every case of `fetal-iqa synth cases`",
                             "evaluate cases --split all --model demo"),
                            ("an adapter on the test split it was trained apart from, the metrics kept as JSON",
                             "evaluate acouslic/train --adapter cls.safetensors --out metrics.json"),
                            ("the challenge's score of `fetal-iqa score ... --challenge-output predictions`",
                             "evaluate --challenge predictions --ground-truth cases")))
    evaluate.add_argument("data_dir", type=Path, nargs="?", metavar="DATA_DIR",
                          help="ACOUSLIC-AI-layout folder (not needed with --challenge)")
    evaluate.add_argument("--split", choices=("train", "val", "test", "all"), default="test",
                          help="which cases: a split as `fetal-iqa train` makes it (the paper's 70/10/20), or all")
    evaluate.add_argument("--split-by-subject", action="store_true",
                          help="the split as `fetal-iqa train --split-by-subject` made it")
    evaluate.add_argument("--challenge", type=Path, metavar="PRED_DIR", help="score challenge-format predictions")
    evaluate.add_argument("--ground-truth", type=Path, metavar="GT_DIR",
                          help="with --challenge: an ACOUSLIC-AI-layout folder holding the true masks and "
                          "circumferences")
    evaluate.add_argument("--out", type=Path, help="write the metrics as JSON")
    add_model_options(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    demo = add_command(commands, "train-demo", "regenerate the built-in demo model from synthetic sweeps",
                       "Regenerate the built-in demo model: synthesise cases, train a small model of FetalCLIP_CLS's "
                       "family on them from scratch, choose its threshold, and report its F1 on held-out synthetic "
                       "cases.",
                       (("the demo classification model, replacing the package's (about an hour on 2 CPU cores)",
                         "train-demo"),
                        ("the demo segmentation model, its synthetic data kept for another run",
                         "train-demo --task segmentation --work-dir demo-work"),
                        ("a quick trial, written elsewhere",
                         "train-demo --cases 12 --epochs 1 --out trial.safetensors")))
    demo.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                      help="which demo model: classification (frame quality) or segmentation (the abdomen's mask)")
    demo.add_argument("--cases", type=bounded_int(2),
                      help="synthetic training cases, a sixth of which validate to pick the epoch "
                      "(default: 240 for classification, 120 for segmentation)")
    demo.add_argument("--frames-per-sweep", type=bounded_int(10, 10_000), default=40,
                      help="of the training cases: many short sweeps hold more distinct abdomens than few long ones")
    demo.add_argument("--val-cases", type=bounded_int(1), default=8,
                      help="validation cases of the real shape (6 x 140 frames), to choose the threshold")
    demo.add_argument("--heldout-cases", type=bounded_int(1), default=8, help="held-out cases of the real shape (6 x 140 frames)")
    demo.add_argument("--epochs", type=bounded_int(1), help="(default: 6 for classification, 1 for segmentation)")
    demo.add_argument("--work-dir", type=Path, help="keep the synthetic data here (default: a temporary folder)")
    demo.add_argument("--out", type=Path, help="the model file to write (default: the demo model the package reads)")
    demo.set_defaults(handler=cmd_train_demo)


def cmd_train(args) -> int:
    from ..base.errors import ModelLoadError
    from ..model.tower import load_config
    from ..base.resources import fetalclip_config, fetalclip_weights
    from ..training.data import DatasetError, load_frames, read_cases, split_cases
    from ..training.train import TrainSettings
    try:
        config = load_config(args.config) if args.config else fetalclip_config()
        cases = read_cases(args.data_dir)
    except (ModelLoadError, DatasetError) as error:
        say_error(error)
        return 2
    weights = None if args.from_scratch else (args.weights or fetalclip_weights())
    if weights is not None and not Path(weights).exists():
        print(f"error: '{weights}' does not exist; give --weights, or --from-scratch for a small config",
              file=sys.stderr)
        return 2
    splits = split_cases(cases, by_subject=args.split_by_subject)
    cache = args.out.parent / ".frame-cache"
    frames = {name: load_frames(args.data_dir, splits[name], cache, args.all_sweeps,
                                ProgressBar(f"reading {name} cases", 1).update) for name in ("train", "val")}
    settings = TrainSettings(task=args.task, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, max_steps=args.max_steps, full_finetune=args.from_scratch,
                             device=args.device, select_by=args.select_by)
    metadata = _run_training(settings, config, frames, args.out, weights,
                             {"split": {k: [c.uuid for c in v] for k, v in splits.items()},
                              "split_by_subject": args.split_by_subject})
    print(json.dumps(metadata["metrics"], indent=2))
    print(f"wrote {args.out}")
    return 0


def _run_training(settings, config, frames, out, weights, extra):
    from ..training.train import train
    bar = ProgressBar("training", 1)

    def progress(epoch, step, steps, loss, elapsed):  # one bar over all epochs: its ETA is the run's
        bar.update(epoch * steps + step, settings.epochs * steps,
                   extra=f"epoch {epoch + 1}/{settings.epochs} loss {loss:.4f}")

    try:
        return train(settings, config, frames["train"], frames["val"], out, weights, extra, progress)
    finally:
        bar.close()


def cmd_evaluate(args) -> int:
    if args.challenge:
        return _evaluate_challenge(args)
    if args.data_dir is None:
        print("error: give DATA_DIR, or --challenge PRED_DIR --ground-truth GT_DIR", file=sys.stderr)
        return 2
    from .options import model_spec
    from ..model.loading import load_model
    from ..base.errors import ModelLoadError
    from ..training.data import DatasetError, load_frames, read_cases, split_cases
    from ..training.evaluate import frame_report
    try:
        cases = read_cases(args.data_dir)
        model = load_model(model_spec(args))
    except (ModelLoadError, DatasetError) as error:
        say_error(error)
        return 2
    chosen = cases if args.split == "all" else split_cases(cases, by_subject=args.split_by_subject)[args.split]
    frames = load_frames(args.data_dir, chosen, None, False, ProgressBar("reading cases", 1).update)
    report = frame_report(model, frames)
    _print_report(report, args.out)
    return 0


def _evaluate_challenge(args) -> int:
    from ..training.evaluate import ChallengeInputError, evaluate_challenge
    if args.ground_truth is None:
        print("error: --challenge needs --ground-truth GT_DIR", file=sys.stderr)
        return 2
    try:
        report = evaluate_challenge(args.challenge, args.ground_truth)
    except ChallengeInputError as error:
        say_error(error)
        return 2
    _print_report(report, args.out)
    return 0


def _print_report(report: dict, out: Path | None) -> None:
    from ..base.fileio import atomic_write
    for line in report.pop("table"):
        print(line)
    if out:
        atomic_write(out, lambda f: f.write(json.dumps(report, indent=2).encode()), overwrite=True)
        print(f"wrote {out}")


def cmd_train_demo(args) -> int:
    """Synthesise cases, train a small model of the same family from scratch, report held-out F1."""
    from ..model.spec import ModelSpec
    from ..base.resources import demo_model_target
    from ..case.acouslic import CIRCUMFERENCES_CSV, FRAMES_PER_SWEEP, SWEEPS
    from ..case.synthetic import write_dataset
    from ..training.data import load_frames, read_cases
    from ..training.train import TrainSettings
    recipe = DEMO_RECIPES[args.task]
    args.cases, args.epochs = args.cases or recipe.cases, args.epochs or recipe.epochs
    out = args.out or demo_model_target(args.task)
    if out is None:
        print("error: this installation's package files are not in a folder; give --out", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as temp:
        work = args.work_dir or Path(temp)
        try:
            work.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            print(f"error: cannot use '{work}' as the work folder: {error.strerror}", file=sys.stderr)
            return 2
        if not (work / "train" / CIRCUMFERENCES_CSV).exists():
            real_shape = args.val_cases + args.heldout_cases
            frames = SWEEPS * (args.cases * args.frames_per_sweep + real_shape * FRAMES_PER_SWEEP)
            need, free = frames * DEMO_DISK_PER_FRAME, shutil.disk_usage(work).free
            if free < need:  # say so before an hour of work, not when the disk is full
                print(f"error: train-demo needs about {need / 1e9:.1f} GB of free disk space in '{work}' for its "
                      f"synthetic cases and frame cache; there are {free / 1e9:.1f} GB. Give --work-dir on a larger "
                      "disk, or fewer --cases.", file=sys.stderr)
                return 2
        # validation and held-out cases have the real layout (140 frames a sweep); all from disjoint seeds
        for name, count, seed, length in (("train", args.cases, 1, args.frames_per_sweep),
                                          ("heldout", args.heldout_cases, 2, FRAMES_PER_SWEEP), ("val", args.val_cases, 3, FRAMES_PER_SWEEP)):
            if not (work / name / CIRCUMFERENCES_CSV).exists():
                write_dataset(work / name, count, seed, frames_per_sweep=length,
                              progress=ProgressBar(f"synthesising {name}", 1).update)
                continue
            held_cases, held_frames = _synthetic_shape(work / name)  # reuse only what was asked for
            if (held_cases, held_frames) != (count, SWEEPS * length):
                print(f"error: '{work / name}' holds {held_cases} cases of {held_frames} frames, not {count} of "
                      f"{SWEEPS * length}; give another --work-dir", file=sys.stderr)
                return 2
        cases = read_cases(work / "train")
        n_val = max(2, len(cases) // 6)
        frames = {"train": load_frames(work / "train", cases[n_val:], work / "cache", True),
                  "val": load_frames(work / "train", cases[:n_val], work / "cache", True)}
        settings = TrainSettings(task=args.task, epochs=args.epochs, batch_size=recipe.batch_size, lr=1e-3, seed=0,
                                 full_finetune=True, negatives_per_positive=1.5, cosine_lr=True,
                                 select_by=recipe.select_by, seg_bce=recipe.seg_bce)
        name = "Demo model (synthetic data)" if args.task == "classification" else "Demo segmentation model (synthetic data)"
        _run_training(settings, recipe.config, frames, out, None, {"name": name, "demo": True})
        spec = ModelSpec.demo_model(args.task) if args.out is None else ModelSpec(adapter=out)
        finish = finish_demo_model if args.task == "classification" else finish_demo_segmenter
        report = finish(spec, out, work)
    for line in report["table"]:
        print(line)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def finish_demo_model(spec, out: Path, work: Path) -> dict:
    """Choose the demo model's threshold on the validation cases of the real shape and measure it on
    the held-out ones; both go into its metadata. Returns the held-out report.

    The threshold is chosen again because good frames are about three times as common in the short
    training sweeps as in real ones, and the F1-best threshold depends on that: chosen on the
    validation split of the training cases it came out at 0.87, and the held-out F1 at 0.926
    instead of 0.950.
    """
    from ..model.loading import load_model
    from ..training.data import load_frames, read_cases
    from ..training.evaluate import frame_report, predict_frames
    from ..training.metrics import best_f1_threshold, classification_metrics
    model = load_model(spec)
    val = load_frames(work / "val", read_cases(work / "val"), work / "cache", True)
    scores = predict_frames(model, val)
    model.threshold = best_f1_threshold(val.labels, scores)
    report = frame_report(model, load_frames(work / "heldout", read_cases(work / "heldout"), work / "cache", True))
    _update_metadata(out, {"threshold": model.threshold},
                     {"validation_real_shape": classification_metrics(val.labels, scores, model.threshold),
                      "synthetic_heldout": report["frame_level"]})
    return report


def finish_demo_segmenter(spec, out: Path, work: Path) -> dict:
    """Measure the demo segmentation model on the held-out cases as a user would: `score
    --challenge-output`, then `evaluate --challenge`. The frame-level and challenge metrics go into
    its metadata. Returns the challenge report, with the frame-level table before it."""
    from ..model.loading import load_model
    from ..training.data import load_frames, read_cases
    from ..training.evaluate import evaluate_challenge, frame_report
    from ..case.acouslic import IMAGES_DIR
    frames = frame_report(load_model(spec), load_frames(work / "heldout", read_cases(work / "heldout"),
                                                         work / "cache", True))
    predictions, scores = work / "heldout-challenge", work / "heldout-scores"
    for folder in (predictions, scores):
        shutil.rmtree(folder, ignore_errors=True)
    model = ["--model", "demo-seg"] if spec.adapter is None else ["--adapter", str(spec.adapter)]
    # torch's own path: the figures are the model's, whichever optional CPU runtimes are installed
    command = ["score", str(work / "heldout" / IMAGES_DIR), "--out-dir", str(scores), "--backend", "torch",
               "--challenge-output", str(predictions), *model]
    if subprocess.run([sys.executable, "-m", "fetal_iqa_gui", *command]).returncode != 0:  # the user's own command
        raise RuntimeError("scoring the held-out cases failed (see above)")
    report = evaluate_challenge(predictions, work / "heldout")
    _update_metadata(out, {}, {"synthetic_heldout": frames["frame_level"],
                               "synthetic_heldout_challenge": {**report["mean"], "score": report["score"],
                                                               "cases": len(report["cases"])}})
    report["table"] = frames["table"] + report["table"]
    return report


def _update_metadata(out: Path, fields: dict, metrics: dict) -> None:
    """Rewrite a demo model file with `fields` and `metrics` added to its metadata."""
    from ..model.checkpoint import build_model, load_into, read_checkpoint, save_checkpoint
    state, document = read_checkpoint(out)
    document.update(fields)
    document["metrics"].update(metrics)
    rebuilt = build_model(document["task"], document["config"])
    load_into(rebuilt, state, out, full_model=True)
    save_checkpoint(rebuilt, out, document, full_model=True)


def _synthetic_shape(folder: Path) -> tuple[int, int]:
    """(cases, frames per case) of a synthetic dataset already on disk."""
    from ..training.data import case_frames, read_cases
    cases = read_cases(folder)
    return len(cases), case_frames(folder, cases[0])
