"""This installation and computer in one plain-text report (`fetal-iqa doctor`, Help > About): the
versions that matter, what the CPU and GPU can do, what `auto` would run on, and where files live.
Meant to be pasted into a bug report; it names folders but no sweep or patient."""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .. import __version__
from .cache import COMPILED_MANIFEST, cache_dir, compiled_dir
from ..case.demo import demo_folder
from ..base.fileio import read_regular
from ..base.resources import fetalclip_weights, log_file, weights_dirs
from .cpu import cpu_model, default_threads, physical_cores, usable_cpus

PACKAGES = (("open_clip", "open_clip_torch"), ("peft", "peft"), ("numpy", "numpy"), ("SimpleITK", "SimpleITK"),
            ("pyqtgraph", "pyqtgraph"), ("PySide6", "PySide6-Essentials"))


def report(qt_version: str, settings_file: str | None) -> str:
    """The report. The caller, which may load Qt, tells Qt's version (or why it cannot load) and
    where the settings are stored."""
    rows = [("fetal-iqa", f"{__version__} ({Path(__file__).parents[1]})"),
            ("Python", f"{platform.python_version()} ({sys.executable})"),
            ("System", platform.platform())]
    rows += _torch_rows()
    rows += [(label, _version(dist)) for label, dist in PACKAGES]
    rows += [("Qt", qt_version)]
    rows += _cpu_rows()
    weights = fetalclip_weights()
    rows += [("Settings", settings_file or "unknown (Qt cannot load)"),
             ("Score cache", str(cache_dir())),
             ("Converted models", _converted_models()),
             ("Demo sweep", str(demo_folder())),
             ("Log", str(log_file())),
             ("Model folders", "; ".join(map(str, weights_dirs()))),
             ("FetalCLIP weights", str(weights) if weights.is_file() else f"none (put them at {weights})")]
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label + ':':{width}} {value}" for label, value in rows)


def _converted_models() -> str:
    """The compiled backends' cache (model/runtime.py): each entry's backend, precision and what its
    static int8 was calibrated on, by kind only (the manifest names the sweep; this report does not)."""
    folder = compiled_dir()
    kinds = {"synthetic": "synthetic frames", "first-sweep": "the first sweep scored", "sample": "a sample sweep"}
    found = []
    for manifest in sorted(folder.glob(f"*/{COMPILED_MANIFEST}")):
        try:
            entry = json.loads(read_regular(manifest))
            calibration = kinds.get(entry.get("calibration"))
            found.append(f"{entry['backend']} {entry['precision']}" + (f" (calibrated on {calibration})" if calibration else ""))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            found.append("one unreadable (converted again when used)")
    return f"{folder}: " + ("; ".join(found) if found else "none")


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _torch_rows() -> list[tuple[str, str]]:
    try:
        import torch
    except Exception as error:  # a broken torch is what this report is for
        return [("torch", f"cannot be imported: {error}")]
    if torch.cuda.is_available():
        cuda = f"yes, {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    else:
        cuda = "no" + (f" (this torch is built for CUDA {torch.version.cuda})" if torch.version.cuda else "")
    mps = getattr(torch.backends, "mps", None)
    return [("torch", torch.__version__), ("CUDA GPU", cuda), ("Apple MPS", "yes" if mps and mps.is_available() else "no")]


def _cpu_rows() -> list[tuple[str, str]]:
    cores = physical_cores()
    rows = [("CPU", cpu_model()),
            ("CPU cores", f"{cores} physical, {usable_cpus()} logical usable; scoring threads {default_threads()} "
                          f"(the desktop app: {default_threads(for_window=True)})")]
    try:
        import torch

        from .choice import cpu_has_bf16, pick_device, pick_precision
        from .measured import FORCE_VARIABLE, forced, kept_choices
    except Exception as error:
        return rows + [("Auto engine", f"unknown: the model's libraries cannot be imported ({error})")]
    features = [torch.backends.cpu.get_cpu_capability(), f"native bf16 {'yes' if cpu_has_bf16() else 'no'}"]
    vnni = getattr(torch.cpu, "_is_vnni_supported", None)
    if vnni:
        features.append(f"VNNI (fast int8) {'yes' if vnni() else 'no'}")
    rows += [("CPU features", ", ".join(features)), ("Runtimes", _runtimes())]
    device = pick_device("auto")
    if device.type != "cpu":
        return rows + [("Auto engine", f"{device.type.upper()} {pick_precision('auto', device)} (torch)")]
    backend, precision = forced()
    if backend or precision:
        return rows + [("Auto engine", f"{backend or 'torch'} {precision or 'fp32'} (forced by {FORCE_VARIABLE})")]
    measured = kept_choices()
    return rows + [("Auto engine", "; ".join(measured) if measured else
                    "not measured on this computer yet: the first scoring times torch and OpenVINO on a block of the "
                    "model, once (seconds)")]


def _runtimes() -> str:
    """Every runtime the engine may use, with its version, and whether `auto` may choose it."""
    said = []
    for label, dist in (("torch", "torch"), ("OpenVINO", "openvino"), ("NNCF (OpenVINO int8)", "nncf"),
                        ("ONNX Runtime (chosen by name only)", "onnxruntime")):
        said.append(f"{label} {_version(dist)}")
    return ", ".join(said)
