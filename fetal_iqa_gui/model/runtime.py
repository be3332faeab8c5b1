"""Compiled CPU backends: the merged model exported to ONNX, run by ONNX Runtime or OpenVINO.

Both runtimes are optional (`pip install fetal-iqa[cpu]`): they are imported only here, and only
when used; without them the engine runs on torch. A conversion (export, quantisation) takes a
while, so its result is cached on disk in the user cache (`fetal-iqa/compiled/`), keyed by the
model's identity, the precision and the runtime's version. An entry is written to a temporary
folder and renamed into place, with a manifest of its files' sha256; one that does not match or
does not load is rebuilt, never trusted.

int8 per runtime:
- ONNX Runtime: dynamic int8 (weights int8 per output channel, activations quantised per batch):
  like torch's own dynamic int8, a frame's score moves slightly with its batch-mates.
- OpenVINO: static int8 (NNCF, activation ranges calibrated on synthetic sweep frames), used only
  if it keeps fp32's decisions and best frame on held-back frames; otherwise int8 weights only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import platformdirs
import torch

from ..fileio import STAGING_PREFIX, remove_stale_parts

log = logging.getLogger(__name__)

COMPILED = ("onnxruntime", "openvino")
FORMAT_VERSION = 1  # bump when a conversion changes: old entries then stop matching
CONVERTING = "Converting the model for this CPU (once)…"
MANIFEST = "manifest.json"
AGREEMENT = 0.995  # static int8 must keep at least this share of fp32's decisions (and the best frame)
_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


def installed(backend: str) -> bool:
    if backend == "torch":
        return True
    try:
        return backend in _PACKAGES and importlib.util.find_spec(_PACKAGES[backend]) is not None
    except (ImportError, ValueError):  # a broken install, or one blocked through sys.modules
        return False


def runtime_version(backend: str) -> str:
    return torch.__version__ if backend == "torch" else importlib.metadata.version(_PACKAGES[backend])


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as file:
            return set(next((line for line in file if line.startswith("flags")), "").split())
    except OSError:
        return set()


def cpu_summary() -> str:
    """The CPU's model and the features that decide the backend, for logs and the benchmark."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as file:
            name = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), name)
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    flags = [flag for flag in wanted if flag in cpu_flags()]
    return (f"{name}, {os.cpu_count()} cores, torch capability {torch.backends.cpu.get_cpu_capability()}, "
            f"flags: {' '.join(flags) or 'none of note'}")


def pick_backend(name: str, device: torch.device, precision: str) -> str:
    """The backend `name` means here. `auto` on a CPU: OpenVINO where installed (its static int8
    was the fastest measured, on AVX-512 and on AVX2 alike, and does not depend on batch-mates);
    else ONNX Runtime on AVX-512 CPUs only (on AVX2 its dynamic int8 was slower than torch's);
    else torch, which is also the choice on a GPU and for fp16. The setting FETAL_IQA_BACKEND, if
    it names a backend, is what `auto` means (the tests keep to torch)."""
    if name != "auto":
        return name
    if os.environ.get("FETAL_IQA_BACKEND") in COMPILED + ("torch",):
        return os.environ["FETAL_IQA_BACKEND"]
    if device.type != "cpu" or precision == "fp16":
        return "torch"
    if installed("openvino"):
        return "openvino"
    avx512 = torch.backends.cpu.get_cpu_capability() == "AVX512"
    if installed("onnxruntime") and avx512 and precision != "bf16":
        return "onnxruntime"
    return "torch"


def compiled_dir() -> Path:
    return Path(platformdirs.user_cache_dir("fetal-iqa")) / "compiled"


@dataclass
class CompiledModel:
    """A converted model loaded by its runtime: raw outputs (logits or mask logits) for a batch."""

    backend: str
    precision: str  # what the conversion kept, e.g. int8, or int8-weights when static int8 disagreed
    run: Callable[[np.ndarray], np.ndarray]
    converted_s: float | None = None  # seconds spent converting it now; None when read from the cache

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(images, dtype=np.float32))


def compile_model(model, backend: str, precision: str, threads: int, notify: Callable[[str], None] | None = None,
                  bf16_native: bool = False) -> CompiledModel:
    """The model (a `LoadedModel`) converted for `backend` at `precision`, from the cache when it
    holds a sound entry, else converted now (saying so through `notify`) and cached."""
    if not installed(backend):
        raise ModuleNotFoundError(f"{backend} is not installed (pip install 'fetal-iqa[cpu]')")
    key = hashlib.sha256(f"{FORMAT_VERSION}|{model.identity}|{model.task}|{backend}|{precision}|"
                         f"{runtime_version(backend)}|torch {torch.__version__}".encode()).hexdigest()[:32]
    entry = compiled_dir() / key
    compiled = _load_entry(entry, backend, threads, bf16_native)
    if compiled is not None:
        return compiled
    if notify:
        notify(CONVERTING)
    log.info("converting %s for %s %s into %s", model.name, backend, precision, entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(entry.parent)  # conversions killed midway
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=entry.parent) as temp:
        folder = Path(temp) / "entry"
        folder.mkdir()
        kept = _convert(model, backend, precision, folder)
        manifest = {"backend": backend, "precision": kept, "model": model.identity,
                    "runtime": runtime_version(backend), "files": {p.name: _sha256(p) for p in folder.iterdir()}}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(entry, ignore_errors=True)  # a bad entry: the load above refused it
        try:
            folder.rename(entry)
        except OSError:  # another process placed it first: theirs is as good
            pass
    compiled = _load_entry(entry, backend, threads, bf16_native)
    if compiled is None:
        raise RuntimeError(f"the converted model in {entry} does not load")
    compiled.converted_s = time.perf_counter() - started
    log.info("converted in %.1f s", compiled.converted_s)
    return compiled


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _load_entry(entry: Path, backend: str, threads: int, bf16_native: bool) -> CompiledModel | None:
    """The cached model, or None when absent, altered or unloadable (then it is removed)."""
    if not entry.is_dir():
        return None
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
        present = {p.name for p in entry.iterdir()} - {MANIFEST}
        if present != set(files) or any(_sha256(entry / name) != digest for name, digest in files.items()):
            raise ValueError("its files do not match their checksums")
        run = (_ort_session if backend == "onnxruntime" else _ov_compiled)(entry, threads, bf16_native)
        return CompiledModel(backend, manifest["precision"], run)
    except Exception as error:  # anything wrong with a cache entry means: convert again
        log.warning("the cached converted model %s is unusable (%s); converting again", entry, error)
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _convert(model, backend: str, precision: str, folder: Path) -> str:
    """Write the converted model's files into `folder`; the precision it kept."""
    model.merge()
    module = model.module.to(dtype=torch.float32)
    with tempfile.TemporaryDirectory() as temp:
        onnx_path = export_onnx(module, Path(temp) / "model.onnx")
        if backend == "onnxruntime":
            if precision == "int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic
                quantize_dynamic(onnx_path, folder / "model.onnx", per_channel=True, weight_type=QuantType.QInt8)
            else:
                import onnx
                onnx.save(onnx.load(onnx_path), folder / "model.onnx")  # one file: external data folded in
            return precision
        import openvino as ov
        ov_model = ov.convert_model(onnx_path)
    kept = precision
    if precision == "int8":
        ov_model, kept = _ov_int8(model, ov_model)
    ov.save_model(ov_model, folder / "model.xml", compress_to_fp16=False)
    return kept


def export_onnx(module: torch.nn.Module, path: Path) -> Path:
    """The module as ONNX (opset 18, any batch size)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused kernel has no ONNX form
    try:
        example = torch.zeros(2, 3, 224, 224)
        batch = torch.export.Dim("batch", min=1, max=4096)
        with torch.no_grad():
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=18,
                                        dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(path))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return path


def calibration_frames(count: int = 64, seed: int = 7) -> np.ndarray:
    """Synthetic sweep frames (those with content, abdomen frames included) as model input."""
    from ..preprocess import frames_to_tensor
    from ..synthetic import make_case
    case = make_case(seed, frames_per_sweep=max(8, count // 4))
    content = np.flatnonzero(case.frames.reshape(len(case.frames), -1).max(axis=1) > 0)
    labelled = np.flatnonzero(case.masks.reshape(len(case.masks), -1).max(axis=1) > 0)
    rest = np.setdiff1d(content, labelled)
    chosen = np.concatenate([labelled, rest[np.linspace(0, len(rest) - 1, max(0, count - len(labelled))).astype(int)]])
    return frames_to_tensor(case.frames[np.sort(chosen[:count])]).numpy()


def agrees(model, reference: np.ndarray, candidate: np.ndarray) -> tuple[float, bool]:
    """(share of frames with the same good/not-good decision, same best frame) for two raw outputs."""
    ours, _ = model.postprocess(torch.from_numpy(candidate))
    theirs, _ = model.postprocess(torch.from_numpy(reference))
    same = float(np.mean((ours >= model.threshold) == (theirs >= model.threshold)))
    return same, int(np.argmax(ours)) == int(np.argmax(theirs))


def _ov_int8(model, ov_model):
    """Static int8 calibrated on even synthetic frames, checked on the odd ones against fp32:
    first without SmoothQuant (it moved the demo model's best frame), then with it; int8 weights
    only (activations in float) when neither keeps fp32's decisions and best frame."""
    import nncf
    import openvino as ov
    frames = calibration_frames()
    calibration, held_back = frames[0::2], frames[1::2]
    with torch.inference_mode():
        reference = model.module(torch.from_numpy(held_back)).float().numpy()
    batches = [calibration[i:i + 8] for i in range(0, len(calibration), 8)]
    for smooth_quant in (-1, 0.95):
        advanced = nncf.AdvancedQuantizationParameters(
            smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=smooth_quant))
        quantized = nncf.quantize(ov_model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(batches), advanced_parameters=advanced)
        output = ov.Core().compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(held_back)[0]
        share, same_best = agrees(model, reference, np.asarray(output))
        if share >= AGREEMENT and same_best:
            return quantized, "int8"
        log.info("static int8 (SmoothQuant %s) keeps %.1f %% of fp32's decisions, best frame %s",
                 smooth_quant, 100 * share, "kept" if same_best else "moved")
    log.warning("static int8 changes the model's decisions: using int8 weights only")
    return nncf.compress_weights(ov_model), "int8-weights"


def _ort_session(entry: Path, threads: int, bf16_native: bool):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its warnings about unused initialisers are not the user's concern
    session = ort.InferenceSession(str(entry / "model.onnx"), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def _ov_compiled(entry: Path, threads: int, bf16_native: bool):
    import openvino as ov
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "bf16" if bf16_native else "f32"}
    compiled = core.compile_model(core.read_model(entry / "model.xml"), "CPU", config)
    request = compiled.create_infer_request()
    return lambda images: np.array(request.infer([images])[0])
