"""Training as in the paper: AdamW lr 3e-4, batch 32, 5 epochs, best epoch by validation loss.

CLS: LoRA + head, BCE with logits. SEG: decoder (the encoder runs under no_grad, as in the
paper), Dice loss. Each training frame is seen twice an epoch, once as it is and once augmented
(the paper's two copies). Resumable: the state after every epoch is saved beside the output.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..model.checkpoint import save_checkpoint
from ..model.networks import SEG_GOOD_FRACTION, network_for, trainable_parameter_count
from ..model.tower import build_visual, file_sha256, load_visual_weights
from ..engine.preprocess import CLIP_MEAN, CLIP_STD, normalise
from .data import FrameSet, augment
from .metrics import best_f1_threshold, classification_metrics

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    task: str = "classification"
    epochs: int = 5
    batch_size: int = 32
    lr: float = 3e-4
    seed: int = 0
    max_steps: int | None = None  # per epoch; for smoke runs
    full_finetune: bool = False  # train the tower too (small demo models from scratch)
    device: str = "auto"
    negatives_per_positive: float | None = None  # subsample negatives each epoch (None: all)
    cosine_lr: bool = False  # decay the learning rate to zero over the run (the paper keeps it constant)
    # the paper keeps the epoch of least validation loss; with subsampled negatives the loss is
    # miscalibrated for the real class balance, and validation F1 picks better
    select_by: str = "val_loss"  # or "val_f1"
    # SEG: add pixel-wise BCE to the paper's Dice loss. A frame without abdomen has an empty target,
    # where Dice's gradient (eps / (sum p + eps)^2) all but vanishes: trained from scratch on Dice
    # alone, the demo segmenter drew large masks on every sweep and never learned to leave one empty.
    seg_bce: bool = False


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """MONAI's DiceLoss(sigmoid=True) as the paper uses it: per sample and channel, then the mean."""
    probs = torch.sigmoid(logits).flatten(2)
    target = target.flatten(2)
    intersection = (probs * target).sum(-1)
    denominator = probs.sum(-1) + target.sum(-1)
    return (1 - (2 * intersection + eps) / (denominator + eps)).mean()


def make_model(settings: TrainSettings, config: dict, weights: Path | None):
    torch.manual_seed(settings.seed)
    visual = build_visual(config)  # random: the demo models are trained from scratch
    if weights is not None:
        load_visual_weights(visual, weights)
    model = network_for(settings.task, visual, config)
    if settings.full_finetune:
        for parameter in model.parameters():
            parameter.requires_grad = True
    if settings.task == "segmentation":  # the paper trains the decoder only
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith("decoder.") or (settings.full_finetune and parameter.requires_grad)
    return model


def _epoch_items(frames: FrameSet, settings: TrainSettings, rng: np.random.Generator, train: bool) -> list:
    """(frame index, augmented) pairs of one epoch, in the order they are seen."""
    indices = np.arange(len(frames))
    if train and settings.negatives_per_positive:
        positives = indices[frames.labels > 0]
        negatives = indices[frames.labels == 0]
        keep = min(len(negatives), int(len(positives) * settings.negatives_per_positive) or len(negatives))
        indices = np.concatenate([positives, rng.choice(negatives, keep, replace=False)])
    # each training frame twice: as it is, and augmented (the paper's two copies)
    items = [(i, False) for i in indices] + ([(i, True) for i in indices] if train else [])
    return [items[k] for k in rng.permutation(len(items))] if train else items


def _batches(frames: FrameSet, items: list, batch_size: int, rng: np.random.Generator):
    for start in range(0, len(items), batch_size):
        images, masks, labels = [], [], []
        for index, augmented in items[start:start + batch_size]:
            image, mask = frames.images[index], frames.masks[index]
            if augmented:
                image, mask = augment(image, mask, rng)
            images.append(image)
            masks.append(mask)
            labels.append(float(mask.any()) if augmented else frames.labels[index])
        yield (torch.from_numpy(normalise(np.stack(images))), torch.from_numpy(np.stack(masks)[:, None].astype(np.float32)),
               torch.from_numpy(np.array(labels, np.float32)))


def _loss(model, settings, images, masks, labels):
    output = model(images)
    if settings.task == "classification":
        return F.binary_cross_entropy_with_logits(output.float(), labels), output
    return segmentation_loss(output.float(), masks, settings.seg_bce), output


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor, with_bce: bool) -> torch.Tensor:
    loss = dice_loss(logits, masks)
    return loss + F.binary_cross_entropy_with_logits(logits, masks) if with_bce else loss


def evaluate_frames(model, frames: FrameSet, settings: TrainSettings, device) -> tuple[float, np.ndarray]:
    """(mean validation loss, per-frame scores) with the same score rule as inference."""
    model.eval()
    losses, scores = [], []
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for images, masks, labels in _batches(frames, _epoch_items(frames, settings, rng, False), settings.batch_size, rng):
            images, masks, labels = images.to(device), masks.to(device), labels.to(device)
            with _autocast(device):
                loss, output = _loss(model, settings, images, masks, labels)
            losses.append(float(loss) * len(labels))
            if settings.task == "classification":
                scores.append(torch.sigmoid(output.float()).cpu().numpy())
            else:
                scores.append((output.float()[:, 0] > 0).flatten(1).float().mean(1).cpu().numpy())
    model.train()
    return (sum(losses) / max(len(frames), 1)), (np.concatenate(scores) if scores else np.zeros(0))


def _autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def train(settings: TrainSettings, config: dict, train_frames: FrameSet, val_frames: FrameSet, out_path: Path,
          weights: Path | None = None, extra_metadata: dict | None = None, progress=None) -> dict:
    """Train, keep the best epoch by validation loss, write it to `out_path` in our format."""
    if len(train_frames) == 0 or len(val_frames) == 0:
        raise ValueError("the training or validation split holds no frames (too few cases?)")
    device = torch.device("cuda" if settings.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    model = make_model(settings, config, weights).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=0.01)
    steps_estimate = settings.epochs * -(-len(_epoch_items(train_frames, settings, np.random.default_rng(0), True))
                                        // settings.batch_size)

    def lr_factor(step: int) -> float:  # a Python float: NumPy's would reach the saved state and block resuming
        return 0.5 * (1 + math.cos(math.pi * min(step / steps_estimate, 1.0))) if settings.cosine_lr else 1.0

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    state_path = out_path.with_suffix(".train-state.pt")
    best: dict[str, Any]  # the best epoch's loss, number, threshold and metrics
    start_epoch, best = 0, {"val_loss": float("inf")}
    best_state = None
    if state_path.exists():  # resume after an interruption
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        start_epoch, best, best_state = saved["epoch"], saved["best"], saved["best_state"]
        log.info("resuming from epoch %d", start_epoch)
    model.train()
    started = time.monotonic()
    for epoch in range(start_epoch, settings.epochs):
        rng = np.random.default_rng([settings.seed, epoch])
        items = _epoch_items(train_frames, settings, rng, True)
        steps_per_epoch = -(-len(items) // settings.batch_size)
        if settings.max_steps:
            steps_per_epoch = min(steps_per_epoch, settings.max_steps)
        for step, (images, masks, labels) in enumerate(_batches(train_frames, items, settings.batch_size, rng)):
            if settings.max_steps and step >= settings.max_steps:
                break
            images, masks, labels = images.to(device), masks.to(device), labels.to(device)
            with _autocast(device):
                loss, _ = _loss(model, settings, images, masks, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if progress:
                progress(epoch, step + 1, steps_per_epoch, float(loss.detach()), time.monotonic() - started)
        val_loss, val_scores = evaluate_frames(model, val_frames, settings, device)
        if settings.task == "classification":
            threshold = best_f1_threshold(val_frames.labels, val_scores)
        else:
            threshold = SEG_GOOD_FRACTION
        metrics = classification_metrics(val_frames.labels, val_scores, threshold)
        log.info("epoch %d: validation loss %.4f, F1 %.4f", epoch + 1, val_loss, metrics["f1"])
        better = (val_loss < best["val_loss"] if settings.select_by == "val_loss"
                  else metrics["f1"] > best.get("val_metrics", {}).get("f1", -1.0))
        if better:
            best = {"val_loss": val_loss, "epoch": epoch + 1, "threshold": threshold, "val_metrics": metrics}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "epoch": epoch + 1,
                    "best": best, "best_state": best_state}, state_path)
    if best_state is None:
        raise RuntimeError("no epoch was trained (check --epochs)")
    model.load_state_dict(best_state)
    metadata = {
        "config": config,
        "threshold": best["threshold"],
        "base_weights_sha256": file_sha256(weights) if weights else None,
        "preprocessing": {"pad": "centred square, zeros", "resize": "224 bicubic (OpenCV)",
                          "mean": CLIP_MEAN, "std": CLIP_STD},
        "training": {**asdict(settings), "best_epoch": best["epoch"], "val_loss": best["val_loss"],
                     "trainable_parameters": trainable_parameter_count(model)},
        "metrics": {"validation": best["val_metrics"]},
        "app_version": __version__,
        **(extra_metadata or {}),
    }
    save_checkpoint(model.cpu(), out_path, metadata, full_model=weights is None)
    state_path.unlink(missing_ok=True)
    return metadata

