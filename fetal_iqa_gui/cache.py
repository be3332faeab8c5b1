"""Scores saved per sweep and model, so that reopening a sweep shows its scores at once.

Keyed by the sweep's content hash and the model's identity. An entry that cannot be read, or
does not fit the sweep, is ignored (and removed), never trusted.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import platformdirs

from .errors import WriteError
from .fileio import atomic_write

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def cache_dir() -> Path:
    override = os.environ.get("FETAL_IQA_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("fetal-iqa")) / "scores"


def _entry(content_hash: str, model_identity: str) -> Path:
    key = hashlib.sha256(f"v{CACHE_VERSION}|{content_hash}|{model_identity}".encode()).hexdigest()[:32]
    return cache_dir() / f"{key}.npz"


def load_scores(content_hash: str, model_identity: str, n_frames: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(scores with NaN for unscored frames, packed SEG masks or None), or None when absent or bad."""
    path = _entry(content_hash, model_identity)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["content_hash"]) != content_hash or str(data["model"]) != model_identity:
                raise ValueError("key mismatch")
            scores = data["scores"].astype(np.float32)
            masks = data["masks"] if "masks" in data.files else None
        if scores.shape != (n_frames,) or (masks is not None and masks.shape[0] != n_frames):
            raise ValueError("shape mismatch")
        if np.any((scores < 0) | (scores > 1)):
            raise ValueError("scores out of range")
        return scores, masks
    except Exception as error:  # a damaged entry is worth nothing; never let it stop the app
        log.warning("ignoring damaged score cache %s: %s", path, error)
        path.unlink(missing_ok=True)
        return None


def save_scores(content_hash: str, model_identity: str, scores: np.ndarray, masks: np.ndarray | None = None) -> None:
    """Write atomically; a full disk or a read-only cache only costs the cache."""
    arrays = {"scores": scores.astype(np.float32), "content_hash": content_hash, "model": model_identity}
    if masks is not None:
        arrays["masks"] = masks
    try:
        atomic_write(_entry(content_hash, model_identity), lambda file: np.savez(file, **arrays), overwrite=True)
    except WriteError as error:
        log.warning("could not save scores to the cache (%s)", error)
