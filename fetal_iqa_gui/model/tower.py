"""The FetalCLIP vision tower: an open_clip ViT built from a CLIP config, and its weights."""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import logging
import mmap
import os
import pickle
import re
import sys
from pathlib import Path
from typing import cast

import torch

from ..base.errors import ModelLoadError, choice
from ..base.fileio import NotRegularFile, check_regular, read_regular
from ..base.resources import user_weights_dir

# open_clip imports transformers if it can (seconds, some 100 MB), for Hugging Face text towers
# and caption generation that FetalCLIP's vision tower never uses; each such import falls back
# when it fails. So it is hidden while open_clip imports (a None in sys.modules fails the import),
# then shown again: training's peft imports it as usual.
_HIDE_TRANSFORMERS = "transformers" not in sys.modules and "open_clip" not in sys.modules
if _HIDE_TRANSFORMERS:
    sys.modules["transformers"] = None  # type: ignore[assignment]  # blocks the import; typeshed wants modules
try:
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    from open_clip.transformer import VisionTransformer
finally:
    if _HIDE_TRANSFORMERS and sys.modules.get("transformers", 0) is None:
        del sys.modules["transformers"]

log = logging.getLogger(__name__)

FETALCLIP_SHA256 = "90916caa408baf9374ee3f8c1533463331a4ace37a13e61385e782905b35c310"
FETALCLIP_SIZE = 1_710_766_661


_MADV_PAGEOUT = 21  # Linux 5.4+


def release_pages(*tensors: torch.Tensor) -> None:
    """Ask the kernel to take back the pages behind tensors that will not be read again.

    Weights are memory-mapped from their file; once a layer has been merged or quantised into
    new memory, the pages it was read from would otherwise stay in the process until the whole
    file is unmapped. MADV_PAGEOUT drops such clean file pages (they are read back should they be
    used after all) and leaves any other memory as it is, so it is safe on any tensor. Linux only.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE
    for tensor in tensors:
        if tensor is None or tensor.device.type != "cpu" or tensor.nbytes < page:
            continue
        start = tensor.data_ptr() // page * page
        end = -(-(tensor.data_ptr() + tensor.nbytes) // page) * page
        libc.madvise(start, end - start, _MADV_PAGEOUT)  # an old kernel refuses: nothing is lost


def load_config(path: str | os.PathLike) -> dict:
    """An open_clip CLIP config (embed_dim, vision_cfg, ...) from JSON."""
    path = Path(path)
    try:
        config = json.loads(read_regular(path))
    except FileNotFoundError:
        raise ModelLoadError(path, "the config file does not exist", f"Check {choice('config')}.") from None
    except (OSError, ValueError) as error:
        raise ModelLoadError(path, f"the config is not readable JSON ({error})") from None
    check_config(config, path)
    return config


_CONFIG_ADVICE = "Use an open_clip CLIP config such as FetalCLIP_config.json."
_VISION_KEYS = {f.name for f in dataclasses.fields(CLIPVisionCfg)}
# whole numbers a ViT config needs, with bounds far beyond any real tower (a million layers would
# take minutes to build before anything could fail)
_SIZES = {"embed_dim": 65536, "layers": 256, "width": 65536, "head_width": 65536, "patch_size": 4096,
          "image_size": 4096}


def check_config(config: dict, path: str | os.PathLike | None = None) -> None:
    """Raise a `ModelLoadError` naming the field unless `config` describes a ViT open_clip can build."""
    vision = config.get("vision_cfg") if isinstance(config, dict) else None
    if not isinstance(vision, dict) or "embed_dim" not in config:
        raise ModelLoadError(path, "the config lacks 'embed_dim' or 'vision_cfg'", _CONFIG_ADVICE)
    if isinstance(vision.get("layers"), (list, tuple)) or vision.get("timm_model_name"):
        raise ModelLoadError(path, "the config describes a ResNet or timm tower, not a ViT",
                             "FetalCLIP_CLS needs an open_clip ViT config.")
    unknown = sorted(set(vision) - _VISION_KEYS)
    if unknown:
        raise ModelLoadError(path, f"its vision_cfg has keys open_clip does not know ({', '.join(unknown)})",
                             _CONFIG_ADVICE)
    defaults = CLIPVisionCfg()
    size = vision.get("image_size", defaults.image_size)
    sizes = list(size) if isinstance(size, (list, tuple)) and size else [size]  # one side, or (height, width)
    numbers = [("embed_dim", config["embed_dim"]), *[("image_size", side) for side in sizes]]
    numbers += [(key, vision[key]) for key in ("layers", "width", "head_width", "patch_size") if key in vision]
    for key, value in numbers:
        if not (_is_int(value) and 1 <= value <= _SIZES[key]):
            raise ModelLoadError(path, f"its '{key}' is {value!r}, not a whole number from 1 to {_SIZES[key]}",
                                 _CONFIG_ADVICE)
    width, head_width = vision.get("width", defaults.width), vision.get("head_width", defaults.head_width)
    if width % head_width:
        raise ModelLoadError(path, f"its width {width} is not a multiple of its head_width {head_width}",
                             _CONFIG_ADVICE)
    if vision.get("patch_size", defaults.patch_size) > min(sizes):
        raise ModelLoadError(path, "its patch_size is larger than its image_size", _CONFIG_ADVICE)
    ratio = vision.get("mlp_ratio", defaults.mlp_ratio)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 64:
        raise ModelLoadError(path, f"its 'mlp_ratio' is {ratio!r}, not a number from 0 to 64", _CONFIG_ADVICE)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def build_visual(config: dict) -> VisionTransformer:
    """The vision tower alone (the text tower is never built), randomly initialised."""
    check_config(config)
    try:
        vision = CLIPVisionCfg(**config["vision_cfg"])
        return _build_vision_tower(config["embed_dim"], vision, quick_gelu=config.get("quick_gelu", False))
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:  # options check_config does not know
        raise ModelLoadError(None, f"open_clip cannot build a tower from its config ({short_reason(error)})",
                             _CONFIG_ADVICE) from None


def file_sha256(path: str | os.PathLike, chunk: int = 16 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_torch_file(path: Path) -> object:
    """torch.load without running pickled code; every failure becomes a `ModelLoadError`."""
    if not path.exists():
        raise ModelLoadError(path, "the file does not exist",
                             f"Put FetalCLIP_weights.pt in {user_weights_dir()} or give its path ({choice('weights')}).")
    refuse_special(path, "weights")
    if not os.access(path, os.R_OK):
        raise ModelLoadError(path, "you do not have permission to read it")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as error:
        raise unsafe_object_error(path, error, "Only plain PyTorch checkpoints are accepted.") from None
    except Exception as error:  # a damaged file fails in many ways inside torch.load
        log.debug("torch.load failed on %s: %s", path, error)
        raise ModelLoadError(path, "the file is truncated or is not a PyTorch checkpoint",
                             "Download or copy it again.") from None


def refuse_special(path: Path, option: str) -> None:
    """A model file (which exists) must be a regular file: a pipe would block the load for good, a
    termination signal included (taken by another thread, it leaves the open waiting), and a folder
    or a device would be read as a damaged checkpoint."""
    try:
        check_regular(path)
    except NotRegularFile as error:
        raise ModelLoadError(path, str(error), f"Check {choice(option)}.") from None


def unsafe_object_error(path: Path, error: pickle.UnpicklingError, advice: str) -> ModelLoadError:
    """PyTorch's refusal to unpickle an object, told without its advice: PyTorch suggests loading the
    file with `weights_only=False` or allowlisting the type, which would run code from the file."""
    match = re.search(r"GLOBAL ([\w.]+)", str(error)) or re.search(r"got <class '([\w.]+)'>", str(error))
    name = match.group(1) if match else "an unknown type"
    return ModelLoadError(path, f"it holds a Python object of type {name} that fetal-iqa does not load "
                          "(loading it would run code from the file)", advice)


def short_reason(error: Exception) -> str:
    """The first line of an error from a library, for a message (never PyTorch's advice on unsafe loading)."""
    lines = [line for line in str(error).strip().splitlines() if "weights_only" not in line]
    return lines[0][:160] if lines else type(error).__name__


def visual_state_dict(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """The vision tower's tensors of an open_clip checkpoint ('state_dict', 'module.' prefix)."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ModelLoadError(path, "it is not an open_clip checkpoint (no state_dict)")
    visual = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("visual.") and isinstance(value, torch.Tensor):
            visual[key.removeprefix("visual.")] = value
    if not visual:
        raise ModelLoadError(path, "it holds no vision-tower weights ('visual.*' keys)",
                             "Is this the FetalCLIP weights file?")
    return visual


def load_visual_weights(visual: torch.nn.Module, path: str | os.PathLike, verify_sha256: bool = False) -> str | None:
    """Load FetalCLIP_weights.pt into `visual`; returns a warning when the hash is not the published one.

    A tower built on the meta device takes the file's (memory-mapped) tensors as they are, so
    the weights are held once, not twice, while loading.
    """
    path = Path(path)
    warning = None
    if verify_sha256:
        digest = file_sha256(path)
        if digest != FETALCLIP_SHA256:
            warning = (f"'{path.name}' is not the published FetalCLIP_weights.pt (sha256 {digest[:12]}... "
                       f"instead of {FETALCLIP_SHA256[:12]}...); results may differ from the paper.")
            log.warning(warning)
    state = visual_state_dict(read_torch_file(path), path)
    load_strict(visual, state, path)
    return warning


def encoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The tower a FetalCLIP network wraps (its `encoder`: peft's model, or the plain tower)."""
    return cast(torch.nn.Module, model.encoder)  # torch types a submodule read by name as Tensor | Module


def on_meta(module: torch.nn.Module) -> bool:
    return any(p.is_meta for p in module.parameters())


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path | None) -> None:
    """load_state_dict with missing/unexpected keys and wrong shapes explained, not dumped."""
    check_state(module.state_dict(), state, path)
    module.load_state_dict(state, strict=True, assign=on_meta(module))


def check_state(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path | None) -> None:
    """Raise a `ModelLoadError` unless `state` has exactly the keys and shapes of `own`."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if wrong:
        key = wrong[0]
        raise ModelLoadError(path, f"its architecture does not match the config ({key}: "
                             f"{tuple(state[key].shape)} in the file, {tuple(own[key].shape)} expected)",
                             f"Give the config the weights were trained with ({choice('config')}).")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise ModelLoadError(path, "its weights do not fit the model: " + ", ".join(parts) + " keys",
                             "Check that the file and the config belong together.")
