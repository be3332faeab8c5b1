"""Scores saved per sweep and model, so that reopening a sweep shows its scores at once.

Keyed by the sweep's content hash, the model's identity and the variant that computed them
(precision and device class: bf16 scores differ from fp32 ones). An entry that cannot be read,
or does not fit the sweep, is ignored (and removed), never trusted. The cache stays under a size
limit by removing the least recently used entries: its own only, named by `ENTRY_NAME`, in a folder
the app made (inside FETAL_IQA_CACHE_DIR, which may hold the user's own files). Entries are
readable by the user alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from ..base.errors import WriteError
from ..base.fileio import atomic_write, private_folder, read_regular, remove_stale_parts
from .preprocess import INPUT_SIZE

log = logging.getLogger(__name__)

CACHE_VERSION = 2
DEFAULT_LIMIT_MB = 500
PACKED_MASK_BYTES = INPUT_SIZE * INPUT_SIZE // 8  # a SEG model's 224 x 224 mask, one bit a pixel (np.packbits)
SCORES_FOLDER = "fetal-iqa-scores"  # the app's own folder inside FETAL_IQA_CACHE_DIR
ENTRY_NAME = re.compile(r"[0-9a-f]{32}\.npz")  # what `_entry` names: the only files the size limit removes
PRIVATE_FILE = 0o600


COMPILED_MANIFEST = "manifest.json"  # in each entry of `compiled_dir()`: its files' sha256, what it was made from


def compiled_dir() -> Path:
    """The compiled CPU backends' converted models (model/runtime.py writes them, `doctor` lists them)."""
    return Path(platformdirs.user_cache_dir("fetal-iqa")) / "compiled"


def measured_engines_file() -> Path:
    """What `auto` measured on this computer (engine/measured.py): rates per model shape, no patient."""
    return Path(platformdirs.user_cache_dir("fetal-iqa")) / "engines.json"


def token_checks_file() -> Path:
    """Whether skipping a sweep's black patches kept fp32's decisions (engine/tokens.py), per model,
    subset and engine: no patient, no pixels."""
    return Path(platformdirs.user_cache_dir("fetal-iqa")) / "token-checks.json"


def read_records(path: Path) -> dict:
    """A small JSON record file of the cache (what `auto` measured, the fast paths' checks) as a
    dict: empty when it is absent or damaged (the work it records is then done again)."""
    try:
        records = json.loads(read_regular(path))
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def keep_record(path: Path, key: str, value, what: str) -> None:
    """`value` under `key` in the record file `path`, replaced whole and readable by the user alone.
    A cache that cannot be written is said in the log: `what` is only done again next time."""
    records = read_records(path)
    records[key] = value
    text = json.dumps(records, indent=1)
    try:
        private_folder(path.parent)
        atomic_write(path, lambda file: file.write(text.encode()), overwrite=True, mode=PRIVATE_FILE)
    except (OSError, WriteError) as error:
        log.warning("could not keep %s in %s (%s)", what, path, error)


def cache_dir() -> Path:
    """The score cache's own folder: in FETAL_IQA_CACHE_DIR when set (a folder of the user's, left as
    it is), else in the user cache folder."""
    override = os.environ.get("FETAL_IQA_CACHE_DIR")
    return Path(override) / SCORES_FOLDER if override else Path(platformdirs.user_cache_dir("fetal-iqa")) / "scores"


def cache_limit_mb() -> float:
    """The cache's size limit: the setting FETAL_IQA_CACHE_MB, or 500 MB."""
    setting = os.environ.get("FETAL_IQA_CACHE_MB")
    if setting is None:
        return DEFAULT_LIMIT_MB
    try:
        limit = float(setting)
    except ValueError:
        limit = math.nan
    if not (math.isfinite(limit) and limit >= 0):
        log.warning("FETAL_IQA_CACHE_MB=%r is not a size in MB; the cache keeps to %d MB", setting, DEFAULT_LIMIT_MB)
        return DEFAULT_LIMIT_MB
    return limit


def _entry(content_hash: str, model_identity: str, variant: str) -> Path:
    key = hashlib.sha256(f"v{CACHE_VERSION}|{content_hash}|{model_identity}|{variant}".encode()).hexdigest()[:32]
    return cache_dir() / f"{key}.npz"


def load_scores(content_hash: str, model_identity: str, n_frames: int,
                variant: str = "") -> tuple[np.ndarray, np.ndarray | None] | None:
    """(scores with NaN for unscored frames, packed SEG masks or None), or None when absent or bad.

    `variant` names what computed the scores, such as "cpu-int8" (device class and precision).
    """
    path = _entry(content_hash, model_identity, variant)
    try:
        if not path.exists():
            return None
        with np.load(io.BytesIO(read_regular(path)), allow_pickle=False) as data:  # a FIFO is refused, not read
            stored = (str(data["content_hash"]), str(data["model"]), str(data["variant"]))
            if stored != (content_hash, model_identity, variant):
                raise ValueError("key mismatch")
            scores = data["scores"].astype(np.float32)
            masks = data["masks"] if "masks" in data.files else None
        if scores.shape != (n_frames,):
            raise ValueError(f"scores of shape {scores.shape} for {n_frames} frames")
        if np.any((scores < 0) | (scores > 1)):
            raise ValueError("scores out of range")
        if masks is not None and (masks.dtype != np.uint8 or masks.shape != (n_frames, PACKED_MASK_BYTES)):
            raise ValueError(f"masks of shape {masks.shape} and type {masks.dtype}")
    except Exception as error:  # a damaged entry is worth nothing; never let it stop the app
        log.warning("ignoring damaged score cache entry %s: %s", path, error)
        with contextlib.suppress(OSError):  # a folder, or a read-only cache, stays
            path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: the size limit removes it last
    return scores, masks


def save_scores(content_hash: str, model_identity: str, scores: np.ndarray, masks: np.ndarray | None = None,
                variant: str = "", limit_mb: float | None = None) -> None:
    """Write atomically; a full disk or a read-only cache only costs the cache.

    Then the cache is brought under `limit_mb` (default: `cache_limit_mb()`) by removing the least
    recently used entries, and temporary files left by killed writes are removed.
    """
    arrays: dict[str, Any] = {"scores": scores.astype(np.float32), "content_hash": content_hash,  # savez's by name
                              "model": model_identity, "variant": variant}
    if masks is not None:
        arrays["masks"] = masks
    path = _entry(content_hash, model_identity, variant)
    try:
        private_folder(path.parent)
        atomic_write(path, lambda file: np.savez(file, **arrays), overwrite=True, mode=PRIVATE_FILE)
    except OSError as error:
        log.warning("could not make the score cache folder %s (%s)", path.parent, error)
        return
    except WriteError as error:
        log.warning("could not save scores to the cache (%s)", error)
        return
    remove_stale_parts(cache_dir())
    _evict(cache_limit_mb() if limit_mb is None else limit_mb)


def _evict(limit_mb: float) -> None:
    """Remove the least recently used entries (a load touches its entry) until the cache fits. Entries
    an earlier version left readable by others are closed on the way."""
    entries = []
    try:
        found = list(cache_dir().iterdir())
    except OSError:  # removed meanwhile: nothing to bound
        return
    for path in found:
        if not ENTRY_NAME.fullmatch(path.name):
            continue  # not ours: whatever else is in the folder stays
        with contextlib.suppress(OSError):  # removed meanwhile by another process
            status = path.lstat()
            if stat.S_ISREG(status.st_mode):
                entries.append((status.st_mtime, status.st_size, path))
                if status.st_mode & 0o077:
                    path.chmod(PRIVATE_FILE)
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit_mb * 1e6:
            break
        with contextlib.suppress(OSError):
            path.unlink()
        total -= size
