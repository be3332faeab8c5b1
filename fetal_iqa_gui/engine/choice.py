"""The engine's settings, declared once, and every rule that turns them into a device, a precision
and a backend.

Each field of `EngineSettings` carries its choices, default, label and help (`Setting`). The CLI's
options, the window's Settings rows, the warm engine's key and "does this change need rescoring"
are all made from these fields: a new engine setting is one new field here (and its rule below).
What `auto` means is written as tables of rules (`Rule`), and the help text is made from the same
tables, so the two cannot drift apart.

torch is imported inside the functions that need it: the window reads the settings at start-up,
before torch loads off its thread.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable

from ..base.errors import EngineChoiceError, choice

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
BLACK_PATCHES = ("skip", "keep")  # engine/tokens.py
COMPILED = ("onnxruntime", "openvino")  # compiled CPU runtimes (engine/compiled.py)
_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
CPU_EXTRA = "pip install 'fetal-iqa[cpu]'"  # ONNX Runtime; OpenVINO comes with the package where it has wheels
INSTALL = {"onnxruntime": CPU_EXTRA, "openvino": "pip install openvino nncf"}


# -- what `auto` means, as tables -----------------------------------------------------------------

@dataclass(frozen=True)
class Situation:
    """What the rules ask about: the device chosen (a torch.device type, or None before), the
    precision asked for and the backend chosen (None before)."""

    device: str | None = None
    precision: str = "auto"
    backend: str | None = None


@dataclass(frozen=True)
class Rule:
    """Where `holds(situation)`, `auto` means `choice`; `when` says so in the help ("" for the
    last rule, which always holds)."""

    choice: str
    when: str
    holds: Callable[[Situation], bool]


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def _mps() -> bool:
    import torch
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


DEVICE_RULES = (
    Rule("cuda", "where a CUDA GPU is available", lambda s: _cuda()),
    Rule("mps", "where Apple's MPS is available", lambda s: _mps()),
    Rule("cpu", "", lambda s: True),
)
MEASURED = "the fastest"  # what a rule says where `auto` is decided by timing (engine/measured.py)
BACKEND_RULES = (
    Rule("torch", "on a GPU or at fp16", lambda s: s.device != "cpu" or s.precision == "fp16"),
    # a CPU's flags do not say what is fast there (bf16 was 4.7x fp32 on one CPU, slower on another)
    Rule(MEASURED, "of torch and OpenVINO on this CPU, timed once on a block of the model (`fetal-iqa doctor` "
                   "shows the rates)", lambda s: True),
)
PRECISION_RULES = (
    Rule("bf16", "on a CUDA GPU with native bf16", lambda s: s.device == "cuda" and cuda_has_bf16()),
    Rule("fp16", "on an older CUDA GPU", lambda s: s.device == "cuda"),
    Rule("fp32", "on Apple's MPS", lambda s: s.device == "mps"),
    Rule("int8", "on ONNX Runtime", lambda s: s.backend == "onnxruntime"),
    Rule(MEASURED, "of fp32, bf16 and int8 on this CPU (timed with the backend)", lambda s: True),
)

def follow(rules: tuple[Rule, ...], situation: Situation) -> str:
    return next(rule.choice for rule in rules if rule.holds(situation))


def describe_auto(rules: tuple[Rule, ...]) -> str:
    """'auto: A where ..., else B where ..., else C': the rules in the order they are tried."""
    return "auto: " + ", else ".join(f"{rule.choice} {rule.when}".strip() for rule in rules)


# -- the settings -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """How one engine setting is offered: in the CLI (`--name`) and in the window's Settings."""

    label: str  # the window's name for it
    help: str
    choices: tuple[str, ...] | None = None
    rules: tuple[Rule, ...] = ()  # what `auto` means, for the help
    bounds: tuple[int, int] | None = None  # a whole number in this range; None (the field's default) is automatic
    is_path: bool = False  # a file the user names
    in_window: bool = True  # offered in the window's Settings (threads: the window keeps a core for itself)

    @property
    def full_help(self) -> str:
        return f"{self.help}; {describe_auto(self.rules)}" if self.rules else self.help


def _declared(default: Any, setting: Setting) -> Any:
    return field(default=default, metadata={"setting": setting})


@dataclass(frozen=True)
class EngineSettings:
    """How to run the model. Frozen: equal settings make the same engine, and any change is a
    reason to score again (the scores may move with the device, precision, backend or batch)."""

    device: str = _declared("auto", Setting("Device", "where the model runs", DEVICES, DEVICE_RULES))
    precision: str = _declared("auto", Setting("Precision", "the numbers it computes in", PRECISIONS,
                                               PRECISION_RULES))
    batch_size: int | None = _declared(None, Setting("Batch size", "frames per forward pass (default: 8 on a CPU, "
                                                     "64 on a GPU)", bounds=(1, 4096)))
    _: KW_ONLY  # the rest by name
    backend: str = _declared("auto", Setting("Backend", "what runs it: torch, or a compiled CPU runtime",
                                             BACKENDS, BACKEND_RULES))
    threads: int | None = _declared(None, Setting("CPU threads", "CPU threads (default: one per physical core)",
                                                  bounds=(1, 256), in_window=False))  # libgomp aborts on absurd counts
    # on by default: used only where the subset keeps fp32's decisions and best frame (engine/tokens.py)
    black_patches: str = _declared("skip", Setting(
        "Black patches", "image patches black in every frame of a sweep (outside the probe's view): skip them (two "
        "fifths less work a frame; CLS models, used where it keeps fp32's decisions on the sweep's own frames) or keep "
        "them", BLACK_PATCHES))
    calibration: str | None = _declared(None, Setting(
        "Calibration sweep", "OpenVINO int8 of a real model: calibrate on this sweep file (default: the first "
        "sweep scored; converted again when it changes)", is_path=True))

    def __post_init__(self):
        for name, setting in declared_settings():
            value = getattr(self, name)
            if setting.choices and value not in setting.choices:
                raise ValueError(f"{name} must be one of {setting.choices}, not {value!r}")
            if setting.bounds and value is not None and not setting.bounds[0] <= value <= setting.bounds[1]:
                raise ValueError(f"{name} must be from {setting.bounds[0]} to {setting.bounds[1]}, not {value!r}")


def declared_settings() -> list[tuple[str, Setting]]:
    """(field name, Setting) of every engine setting, in the order they are offered."""
    return [(f.name, f.metadata["setting"]) for f in fields(EngineSettings)]


def choice_words(style: str) -> dict[str, str]:
    """How a front door names each engine setting in advice: 'cli' (--batch-size) or 'window'."""
    if style == "cli":
        return {name: "--" + name.replace("_", "-") for name, _ in declared_settings()}
    return {name: f"Settings > {setting.label}" for name, setting in declared_settings()}


# -- the rules ----------------------------------------------------------------------------------

def installed(backend: str) -> bool:
    if backend == "torch":
        return True
    try:
        return backend in _PACKAGES and importlib.util.find_spec(_PACKAGES[backend]) is not None
    except (ImportError, ValueError):  # a broken install, or one blocked through sys.modules
        return False


def runtime_version(backend: str) -> str:
    if backend == "torch":
        import torch
        return torch.__version__
    return importlib.metadata.version(_PACKAGES[backend])


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is slower than fp32.

    Asked of torch itself (any system); should this torch lack the query, of /proc/cpuinfo on Linux.
    """
    import torch

    from .cpu import linux_cpu_flags
    queries = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    known = [query for query in queries if query is not None]
    if len(known) == len(queries):
        return any(query() for query in known)
    return bool({"avx512_bf16", "amx_bf16"} & linux_cpu_flags())


def cuda_has_bf16() -> bool:
    """Whether this GPU computes bf16 natively (Ampere and later); older ones emulate it, slower than fp16."""
    import torch
    return torch.cuda.is_bf16_supported(including_emulation=False)


def pick_device(name: str) -> torch.device:
    import torch
    if name == "auto":
        return torch.device(follow(DEVICE_RULES, Situation()))
    if name == "cuda" and not _cuda():
        raise EngineChoiceError(None, "no CUDA GPU is available on this computer",
                                f"Choose {choice('device')} 'cpu' or 'auto'.")
    if name == "mps" and not _mps():
        raise EngineChoiceError(None, "Apple's MPS is not available on this computer",
                                f"Choose {choice('device')} 'cpu' or 'auto'.")
    return torch.device(name)


def pick_backend(name: str, device: torch.device, precision: str) -> str:
    """The backend `name` means here (BACKEND_RULES): MEASURED on a CPU, for `measured.choose`."""
    if name != "auto":
        return name
    return follow(BACKEND_RULES, Situation(device.type, precision))


def pick_precision(precision: str, device: torch.device, backend: str = "torch") -> str:
    """The precision `precision` means here (PRECISION_RULES), refusing what the device cannot do:
    MEASURED on a CPU, for `measured.choose`."""
    if precision == "int8" and device.type != "cpu":
        raise EngineChoiceError(None, "int8 runs on the CPU only", f"Choose {choice('precision')} 'auto' or 'bf16' on a GPU.")
    if precision == "bf16" and device.type == "cuda" and not cuda_has_bf16():
        raise EngineChoiceError(None, "this GPU has no bf16", f"Choose {choice('precision')} 'fp16' or 'auto'.")
    if precision != "auto":
        return precision
    return follow(PRECISION_RULES, Situation(device.type, precision, backend))


def check_backend(backend: str, device: torch.device, precision: str) -> None:
    """Refuse what a compiled backend cannot do, saying what to choose instead."""
    if not installed(backend):
        raise EngineChoiceError(None, f"{backend} is not installed",
                                f"Install it with `{INSTALL.get(backend, CPU_EXTRA)}`, or choose {choice('backend')} 'torch'.")
    if device.type != "cpu":
        raise EngineChoiceError(None, f"{backend} runs on the CPU here",
                                f"Choose {choice('device')} 'cpu', or {choice('backend')} 'torch'.")
    if precision == "fp16" or (backend == "onnxruntime" and precision == "bf16"):
        raise EngineChoiceError(None, f"{backend} does not run {precision} here",
                                f"Choose {choice('precision')} 'int8', 'fp32' or 'auto', or {choice('backend')} 'torch'.")
