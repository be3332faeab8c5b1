"""Compiled CPU backends: the merged model converted for OpenVINO (from torch directly) or exported
to ONNX for ONNX Runtime.

OpenVINO (and NNCF, which quantises) come with the package wherever OpenVINO has wheels; ONNX
Runtime is optional (`pip install fetal-iqa[cpu]`). Both are imported only here, and only when
used; without them the engine runs on torch. A conversion (export, quantisation) takes a
while, so its result is cached on disk in the user cache (`fetal-iqa/compiled/`), keyed by the
model's identity, the precision and the runtime's version. An entry is written to a temporary
folder and renamed into place, with a manifest of its files' sha256; one that does not match or
does not load is rebuilt, never trusted. OpenVINO's compiled form of the model (its `CACHE_DIR`
blob: compiling takes seconds, importing the blob a fraction) is kept inside the entry too, and
its sha256 recorded in the manifest: a start hashes the blob it runs, not the model files as well.

int8 per runtime:
- ONNX Runtime: dynamic int8 (weights int8 per output channel, activations quantised per batch):
  like torch's own dynamic int8, a frame's score moves slightly with its batch-mates.
- OpenVINO: static int8 (NNCF), its activation ranges calibrated on sweep frames: the user's for a
  real model (a sample sweep they name, else the first sweep they score), synthetic ones for the
  demo model. Used only if it keeps fp32's decisions and best frame on held-back frames of the
  same sweep; otherwise int8 weights only. What it was calibrated on is in the cache's manifest:
  the kind of sweep and its pixels' sha256, never its name or path (the entry outlives the case).
  The cache's folders and files are readable by the user alone.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Callable

import numpy as np
import torch
from filelock import FileLock

from .cache import COMPILED_MANIFEST as MANIFEST
from .cache import compiled_dir
from .converters import convert_for_openvino, export_onnx, quiet_nncf
from .choice import INSTALL, installed, runtime_version
from ..model.task import is_good
from ..model.token_subset import on_subset, subset_hash
from ..base.fileio import STAGING_PREFIX, atomic_write, private_folder, read_regular, remove_stale_parts

log = logging.getLogger(__name__)


FORMAT_VERSION = 1  # bump when a conversion changes: old entries then stop matching
CONVERTING = ("Converting the model for this CPU, once (minutes for the full model; later starts read it "
              "from the cache)…")
BLOBS = "compiled"  # OpenVINO's CACHE_DIR inside an entry
AGREEMENT = 0.995  # static int8 must keep at least this share of fp32's decisions (and the best frame)
MASK_IOU = 0.8  # and, for SEG, good frames' masks that overlap this much
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600


@dataclass(frozen=True)
class Calibration:
    """Where static int8's calibration frames come from: `key` is part of the cache key (a new
    sample converts again; any first sweep will do), `load()` gives the frames (model input), what
    to call them (no file name: the manifest keeps it) and the sweep's content hash (None:
    synthetic), and runs only when a conversion needs them."""

    key: str
    load: Callable[[], tuple[np.ndarray, str, str | None]]


SYNTHETIC = Calibration("synthetic", lambda: (calibration_frames(), "synthetic sweep frames", None))


def user_calibration(sample: str | os.PathLike | None, first_case: Callable | None) -> Calibration:
    """Calibration on the sample sweep file `sample`, else on the sweep `first_sweep()` gives (the
    first one scored), else on synthetic frames."""
    if sample is not None:
        from ..case.loading import load_case
        path = Path(sample)
        stat = path.stat() if path.is_file() else None
        key = f"sample:{path.resolve()}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}"

        def load_sample():
            sweep = load_case(path)
            return case_frames(sweep), "the sample sweep", sweep.content_hash
        return Calibration(key, load_sample)
    if first_case is not None:
        def load_first():
            sweep = first_case()
            return case_frames(sweep), "the first sweep scored", sweep.content_hash
        return Calibration("first-sweep", load_first)
    return SYNTHETIC


@dataclass
class CompiledModel:
    """A converted model loaded by its runtime: raw outputs (logits or mask logits) for a batch."""

    backend: str
    precision: str  # what the conversion kept, e.g. int8, or int8-weights when static int8 disagreed
    run: Callable[[np.ndarray], np.ndarray]
    converted_s: float | None = None  # seconds spent converting it now; None when read from the cache
    calibrated_on: str | None = None  # static int8's calibration frames, as `calibration_said` tells them

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(images, dtype=np.float32))


def compile_model(model, backend: str, precision: str, threads: int, notify: Callable[[str], None] | None = None,
                  calibration: Calibration = SYNTHETIC, tokens: np.ndarray | None = None) -> CompiledModel:
    """The model (a `LoadedModel`) converted for `backend` at `precision`, from the cache when it
    holds a sound entry, else converted now (saying so through `notify`) and cached. Static int8
    (OpenVINO) is calibrated on `calibration`'s frames (the demo model: always synthetic ones).
    `tokens`: a CLS model on those tokens only (model/token_subset.py), the indices constants of
    the converted model, whose key names them."""
    if not installed(backend):
        raise ModuleNotFoundError(f"{backend} is not installed ({INSTALL[backend]})")
    static_int8 = backend == "openvino" and precision == "int8"
    calibration = SYNTHETIC if model.is_demo or not static_int8 else calibration
    key = hashlib.sha256(f"{FORMAT_VERSION}|{model.identity}|{model.task}|{backend}|{precision}|"
                         f"{runtime_version(backend)}|torch {torch.__version__}"
                         f"{'|' + calibration.key if static_int8 else ''}"
                         f"{'|tokens ' + subset_hash(tokens) if tokens is not None else ''}".encode()).hexdigest()[:32]
    entry = compiled_dir() / key
    # OpenVINO computes what is not int8 in fp32 (its bf16 hint moved a small model's scores by 0.3):
    # in bf16 only when asked for, as the agreement checks compare against fp32
    in_bf16 = precision == "bf16"
    compiled = _load_entry(entry, backend, threads, in_bf16, verify=True)
    if compiled is not None:
        return compiled
    if notify:
        notify(CONVERTING)
    private_folder(entry.parent)
    # one conversion of a model at a time on this computer: Ray's workers start together, and each
    # would convert it (minutes, 4.5 GB each for ViT-L/14); the others wait, then read its entry
    with FileLock(entry.with_suffix(".lock")):
        compiled = _load_entry(entry, backend, threads, in_bf16, verify=True)
        if compiled is not None:
            return compiled
        return _convert_into(entry, model, backend, precision, threads, in_bf16,
                             calibration if static_int8 else None, tokens)


def _convert_into(entry: Path, model, backend: str, precision: str, threads: int, in_bf16: bool,
                  calibration: Calibration | None, tokens: np.ndarray | None = None) -> CompiledModel:
    """Convert the model, place it in the cache as `entry` (whole or not at all), and load it;
    `calibration` for static int8 only."""
    log.info("converting %s for %s %s into %s", model.name, backend, precision, entry)
    remove_stale_parts(entry.parent)  # conversions killed midway
    started = time.perf_counter()
    # a bad sample fails first, before the minutes of conversion
    frames, calibrated_on, sha256 = calibration.load() if calibration else (None, None, None)
    with tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=entry.parent) as temp:
        folder = Path(temp) / "entry"
        folder.mkdir(mode=PRIVATE_FOLDER)
        kept = _convert(model, backend, precision, folder, Path(temp) / "work", frames, tokens)
        manifest = {"backend": backend, "precision": kept, "model": model.identity,
                    "tokens": None if tokens is None else [int(token) for token in tokens],
                    "calibration": calibrated_on and calibration and calibration.key.partition(":")[0],
                    "calibrated_on": calibrated_on,
                    "calibration_sha256": sha256, "runtime": runtime_version(backend), "files": _checksums(folder)}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _make_private(folder)
        shutil.rmtree(entry, ignore_errors=True)  # a bad entry: the load above refused it
        try:
            folder.rename(entry)
        except OSError:  # another process placed it first: theirs is as good
            pass
    compiled = _load_entry(entry, backend, threads, in_bf16, verify=False)  # hashed just now
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


def _load_entry(entry: Path, backend: str, threads: int, in_bf16: bool, verify: bool) -> CompiledModel | None:
    """The cached model, or None when absent, altered or unloadable (then it is removed). What runs
    is checked against the manifest first: OpenVINO's recorded blob when it is there, else the
    model's files (`verify` False: they were hashed a moment ago, when written)."""
    if not entry.is_dir():
        return None
    try:
        manifest = json.loads(read_regular(entry / MANIFEST))
        files = manifest["files"]
        if manifest.get("calibrated_on") and "calibration_sha256" not in manifest:
            raise ValueError("an earlier version's manifest, which names the sweep it was calibrated on")
        if {p.name for p in entry.iterdir()} - {MANIFEST, BLOBS} != set(files):
            raise ValueError("its files are not those of its manifest")
        blob_checked = backend == "openvino" and _matches(entry / BLOBS, manifest.get("blob"))
        if not blob_checked:
            shutil.rmtree(entry / BLOBS, ignore_errors=True)
            if verify and not _matches(entry, files, skip={MANIFEST, BLOBS}):
                raise ValueError("its files do not match their checksums")
        if backend == "onnxruntime":
            _make_private(entry)  # an entry an earlier version left open to all
            return CompiledModel(backend, manifest["precision"], _ort_session(entry, threads),
                                 calibrated_on=calibration_said(manifest))
        run = _ov_compiled(entry, threads, in_bf16)
        recorded = manifest["blob"] if blob_checked else {}
        written = {name: digest for name, digest in _checksums(entry / BLOBS).items() if name not in recorded}
        if written:  # compiled now (other settings, say), not imported: its blob replaces the recorded one
            if blob_checked and not _matches(entry, files, skip={MANIFEST, BLOBS}):  # compiled from unchecked files
                raise ValueError("its files do not match their checksums")
            for name in recorded:
                (entry / BLOBS / name).unlink(missing_ok=True)
            text = json.dumps(dict(manifest, blob=written), indent=1)
            atomic_write(entry / MANIFEST, lambda file: file.write(text.encode()), overwrite=True, mode=PRIVATE_FILE)
        _make_private(entry)  # and OpenVINO's blob, just written
        return CompiledModel(backend, manifest["precision"], run, calibrated_on=calibration_said(manifest))
    except Exception as error:  # anything wrong with a cache entry means: convert again
        log.warning("the cached converted model %s is unusable (%s); converting again", entry, error)
        shutil.rmtree(entry, ignore_errors=True)
        return None


def calibration_said(manifest: dict) -> str | None:
    """What static int8 was calibrated on, for the user: the kind of sweep and its pixels' sha256."""
    said, sha256 = manifest.get("calibrated_on"), manifest.get("calibration_sha256")
    return f"{said} (pixels sha256 {sha256[:12]}…)" if said and sha256 else said


def _make_private(folder: Path) -> None:
    """An entry's folders and files, readable by the user alone (the app made them all)."""
    for path in [folder, *folder.rglob("*")]:
        wanted = PRIVATE_FOLDER if path.is_dir() else PRIVATE_FILE
        if not path.is_symlink() and path.stat().st_mode & 0o777 != wanted:
            path.chmod(wanted)


def _checksums(folder: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}


def _matches(folder: Path, recorded: dict[str, str] | None, skip: AbstractSet[str] = frozenset()) -> bool:
    """Whether `folder` holds exactly the files `recorded` names (besides `skip`), with those sha256."""
    if not recorded or not folder.is_dir():
        return False
    if {p.name for p in folder.iterdir()} - skip != set(recorded):
        return False
    return all(_sha256(folder / name) == digest for name, digest in recorded.items())


def _convert(model, backend: str, precision: str, folder: Path, work: Path, frames: np.ndarray | None,
             tokens: np.ndarray | None = None) -> str:
    """Write the converted model's files into `folder` (intermediate files go to `work`, on the
    cache's disk: they are the size of the model); the precision it kept. `frames` are given for
    OpenVINO's static int8: calibrated on the even ones, checked against torch on the odd ones.

    Memory: each step holds one copy of the weights at most. The export writes its tensors to a
    separate file; torch's module is then released (built again only if torch must score after
    all); OpenVINO reads its fp32 model memory-mapped and NNCF calibrates one frame at a time.
    All at once (the ONNX in one piece, torch's module kept, batches of 8) it peaked at 8.6 GB."""
    model.merge()
    module = model.module.to(dtype=torch.float32)
    if tokens is not None:
        module = on_subset(module, tokens)
    work.mkdir()
    if frames is not None:  # torch's outputs to check int8 against, while torch's module is here
        calibration, held_back = frames[0::2], frames[1::2]
        with torch.inference_mode():
            reference = batched(lambda images: module(torch.from_numpy(images)).float().numpy(), held_back)
    if backend == "onnxruntime":
        onnx_path = export_onnx(module, work / "model.onnx")
        module = None  # with the release below, torch's copy of the weights goes
        model.release()
        gc.collect()
        import onnx
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic
            quantize_dynamic(onnx_path, folder / "model.onnx", per_channel=True, weight_type=QuantType.QInt8)
        else:
            onnx.save(onnx.load(onnx_path), folder / "model.onnx")  # one file: external data folded in
        return precision
    import openvino as ov
    fp32 = work / "fp32.xml"
    ov.save_model(convert_for_openvino(module), fp32, compress_to_fp16=False)
    module = None  # with the release below, torch's copy of the weights goes
    model.release()
    gc.collect()
    ov_model = ov.Core().read_model(fp32)  # its weights memory-mapped
    kept = precision
    if frames is not None:  # int8
        ov_model, kept = _ov_int8(model, ov_model, calibration, held_back, reference)
    ov.save_model(ov_model, folder / "model.xml", compress_to_fp16=False)
    return kept


def calibration_frames(count: int = 64, seed: int = 7) -> np.ndarray:
    """Synthetic sweep frames (those with content, abdomen frames included) as model input."""
    from .preprocess import frames_to_tensor
    from ..case.synthetic import make_case
    case = make_case(seed, frames_per_sweep=max(8, count // 4))
    content = np.flatnonzero(case.frames.reshape(len(case.frames), -1).max(axis=1) > 0)
    labelled = np.flatnonzero(case.masks.reshape(len(case.masks), -1).max(axis=1) > 0)
    rest = np.setdiff1d(content, labelled)
    chosen = np.concatenate([labelled, rest[np.linspace(0, len(rest) - 1, max(0, count - len(labelled))).astype(int)]])
    return frames_to_tensor(case.frames[np.sort(chosen[:count])]).numpy()


def case_frames(sweep, count: int = 64) -> np.ndarray:
    """`count` image frames spread over a sweep (padding left out), as model input."""
    from .preprocess import frames_to_tensor
    return frames_to_tensor(sweep.frames[sweep.layout.spread_image_frames(count)]).numpy()


def agrees(model, reference: np.ndarray, candidate: np.ndarray) -> tuple[float, bool]:
    """(share of frames that agree, same best frame) for two raw outputs. A frame agrees when its
    good/not-good decision is the same and, for SEG, where either calls it good, its masks overlap
    (IoU >= MASK_IOU): a good frame's mask is drawn and measured, not only counted."""
    ours, our_masks = model.postprocess(torch.from_numpy(candidate))
    theirs, their_masks = model.postprocess(torch.from_numpy(reference))
    ours_good, theirs_good = is_good(ours, model.threshold), is_good(theirs, model.threshold)
    same = ours_good == theirs_good
    if our_masks is not None:
        union = (our_masks | their_masks).sum(axis=(1, 2))
        overlap = (our_masks & their_masks).sum(axis=(1, 2)) / np.maximum(union, 1)
        same &= ~(ours_good | theirs_good) | (overlap >= MASK_IOU)
    return float(np.mean(same)), int(np.argmax(ours)) == int(np.argmax(theirs))


def batched(run: Callable[[np.ndarray], np.ndarray], images: np.ndarray, size: int = 8) -> np.ndarray:
    """`run`'s outputs for `images`, `size` at a time (a ViT-L/14's activations for all at once
    would take gigabytes)."""
    return np.concatenate([run(images[i:i + size]) for i in range(0, len(images), size)])


def _ov_int8(model, ov_model, calibration: np.ndarray, held_back: np.ndarray, reference: np.ndarray):
    """Static int8 calibrated on the `calibration` frames (one at a time: NNCF keeps every
    activation of a batch), checked on the `held_back` ones against fp32's `reference` outputs:
    first without SmoothQuant (it moved the demo model's best frame), then with it; int8 weights
    only (activations in float) when neither keeps fp32's decisions and best frame."""
    import openvino as ov
    samples = [calibration[i:i + 1] for i in range(len(calibration))]
    for smooth_quant in (-1, 0.95):
        with quiet_nncf() as nncf:
            advanced = nncf.AdvancedQuantizationParameters(
                smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=smooth_quant))
            quantized = nncf.quantize(ov_model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(samples), advanced_parameters=advanced)
        compiled = ov.Core().compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        output = batched(lambda images: compiled(images)[0], held_back)  # noqa: B023 (run here, at once)
        compiled = None  # its memory, before agreement is judged and a second calibration runs
        share, same_best = agrees(model, reference, output)
        log.info("static int8 (SmoothQuant %s) keeps %.1f %% of fp32's decisions, best frame %s",
                 smooth_quant, 100 * share, "kept" if same_best else "moved")
        if share >= AGREEMENT and same_best:
            return quantized, "int8"
        del quantized
        gc.collect()
    log.warning("static int8 changes the model's decisions: using int8 weights only")
    with quiet_nncf() as nncf:
        return nncf.compress_weights(ov_model), "int8-weights"


def _ort_session(entry: Path, threads: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its warnings about unused initialisers are not the user's concern
    session = ort.InferenceSession(str(entry / "model.onnx"), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def _ov_compiled(entry: Path, threads: int, in_bf16: bool):
    import openvino as ov
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "bf16" if in_bf16 else "f32", "CACHE_DIR": str(entry / BLOBS)}
    # from the path: on a cache hit OpenVINO imports the blob without reading the model's files
    compiled = ov.Core().compile_model(str(entry / "model.xml"), "CPU", config)
    request = compiled.create_infer_request()
    return lambda images: np.array(request.infer([images])[0])
