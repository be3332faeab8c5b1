"""Scoring benchmark: the paper's path against our engine, measured in the same run.

    python benchmarks/bench_scoring.py [--frames 32] [--variants torch:auto,openvino:int8:skip] [--skip-agreement]

On one synthetic 840-frame ACOUSLIC-AI case, read from an .mha file as the app reads it, and the
full ViT-L/14 FetalCLIP architecture (random weights: speed does not depend on their values):
- baseline: the paper's path, open_clip fp32 eager, LoRA not merged, batch 32, every frame of the
  case in order (padding frames included: the paper's code scores them too);
- engine: our scoring engine, once per backend and precision (`--variants`; those whose runtime
  is not installed are skipped): first `auto:auto`, what `fetal-iqa score` runs with no engine
  options (on a CPU: the fastest installed engine, timed on one block at the first start, which the
  cold start includes; named in the output), then torch with its automatic precision (merged LoRA;
  the fastest of fp32, bf16 and int8 here; CUDA autocast on a GPU), and the compiled CPU backends
  (ONNX Runtime, OpenVINO), each started twice: cold (converting the model into an empty cache)
  and cached. A variant ending in `:skip` skips the patches black in every frame of the case
  (`--black-patches skip`): its cold start converts (for a compiled backend) and checks the
  subset too; with random weights the check's verdict is taken as passed, as for static int8.
Each side runs in its own process (so its peak memory is its own; the resident memory after
scoring is printed too: the steady state while a sweep is scored), times a fixed subset of
frames after a warm-up batch, and extrapolates to the case's image frames (said in the output).
The order's quality (when the final best frame is first yielded, as a fraction of the pass) and
the agreement of the fast path with fp32 are measured with the demo model, whose trained
weights make int8/bf16 errors visible where random weights would not (so the random-weights speed
run keeps OpenVINO's static int8 unchecked; the demo run checks it as the app does).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fetal_iqa_gui.model.checkpoint import build_model  # noqa: E402
from fetal_iqa_gui.engine import agreement, tokens  # noqa: E402
from fetal_iqa_gui.engine import compiled as runtime  # noqa: E402
from fetal_iqa_gui.model.loading import ModelSpec, load_model  # noqa: E402
from fetal_iqa_gui.model.networks import FetalCLIPClassifier  # noqa: E402
from fetal_iqa_gui.model.tower import build_visual, load_visual_weights  # noqa: E402
from fetal_iqa_gui.engine.preprocess import frames_to_tensor  # noqa: E402
from fetal_iqa_gui.base.resources import fetalclip_config  # noqa: E402
from fetal_iqa_gui.engine.choice import COMPILED, EngineSettings, installed, runtime_version  # noqa: E402
from fetal_iqa_gui.engine.cpu import cpu_summary  # noqa: E402
from fetal_iqa_gui.engine.scoring import make_engine, score_case  # noqa: E402
from fetal_iqa_gui.case.case import Case  # noqa: E402
from fetal_iqa_gui.case.loading import load_case  # noqa: E402
from fetal_iqa_gui.case.synthetic import IMAGES_DIR, make_case, write_case  # noqa: E402

CASE_SEED = 2024
# first what `fetal-iqa score` runs with no engine options (what it chose is named in the output)
DEFAULT_VARIANTS = "auto:auto,torch:auto,onnxruntime:int8,openvino:int8"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory now (Linux), for the steady state after loading; NaN elsewhere."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def random_weights_file(folder: Path) -> Path:
    """An open_clip-layout checkpoint of the ViT-L/14 tower with random weights."""
    path = folder / "random_FetalCLIP_weights.pt"
    if not path.exists():
        torch.manual_seed(0)
        visual = build_visual(fetalclip_config())
        torch.save({"epoch": 0, "state_dict": {f"module.visual.{k}": v for k, v in visual.state_dict().items()}}, path)
    return path


def adapter_file(folder: Path) -> Path:
    """A FetalCLIP_CLS adapter (random LoRA and head) in our format."""
    from fetal_iqa_gui.model.checkpoint import save_checkpoint
    path = folder / "random_adapter.safetensors"
    if not path.exists():
        config = fetalclip_config()
        with torch.device("meta"):
            model = build_model("classification", config)
        model = model.to_empty(device="cpu")
        for name, parameter in model.named_parameters():
            if "lora_" in name or name.startswith("classifier."):
                torch.nn.init.normal_(parameter, std=0.02)
        save_checkpoint(model, path, {"config": config})
    return path


def paper_model(weights: Path) -> FetalCLIPClassifier:
    """The paper's inference model: the LoRA-wrapped tower in fp32, LoRA not merged."""
    config = fetalclip_config()
    visual = build_visual(config)
    load_visual_weights(visual, weights)
    return FetalCLIPClassifier(visual, config["embed_dim"]).eval()


def run_baseline(weights: Path, frames: np.ndarray) -> dict:
    """The paper's path: LoRA-wrapped tower in fp32, eager, batch 32, in order."""
    started = time.perf_counter()
    model = paper_model(weights)
    load_s = time.perf_counter() - started
    torch.set_num_threads(torch.get_num_threads())
    with torch.inference_mode():
        model(frames_to_tensor(frames[:2]))  # warm-up
        started = time.perf_counter()
        for i in range(0, len(frames), 32):
            torch.sigmoid(model(frames_to_tensor(frames[i:i + 32])))
        elapsed = time.perf_counter() - started
    return {"load_s": load_s, "frames": len(frames), "seconds": elapsed, "peak_rss_mb": peak_rss_mb(),
            "rss_mb": rss_mb()}


def run_engine(weights: Path, adapter: Path, sweep: Case, frames: np.ndarray, backend: str, precision: str,
               black_patches: str) -> dict:
    # random weights: every score near 0.5, an agreement check means nothing (the demo run checks it)
    runtime.agrees = tokens.agrees = lambda *args: (1.0, True)
    agreement.needs_check = lambda *args: False
    started = time.perf_counter()
    settings = EngineSettings(precision=precision, backend=backend, black_patches=black_patches)
    engine = make_engine(load_model(ModelSpec(weights=weights, adapter=adapter)), settings).for_case(sweep)
    load_s = time.perf_counter() - started  # with skipping: the subset found, converted and checked
    engine.predict(frames[:2])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(frames), engine.batch_size):
        engine.predict(frames[i:i + engine.batch_size])
    elapsed = time.perf_counter() - started
    return {"load_s": load_s, "frames": len(frames), "seconds": elapsed, "peak_rss_mb": peak_rss_mb(),
            "rss_mb": rss_mb(), "engine": engine.description, "batch_size": engine.batch_size,
            "dropped_patches": engine.subset.dropped if engine.subset is not None else 0}


def order_and_agreement(sweep: Case, variants: list[tuple[str, str, str]]) -> dict:
    """With the demo model: when the final best frame first appears, and each variant vs torch fp32."""
    results = {}
    for backend, precision, patches in [("torch", "fp32", "keep"), *variants]:
        settings = EngineSettings(precision=precision, backend=backend, black_patches=patches)
        engine = make_engine(load_model(ModelSpec.demo_model()), settings)
        scores = np.full(sweep.n_frames, np.nan, np.float32)
        order = []
        for batch in score_case(engine, sweep):
            scores[batch.frames] = batch.scores
            order.append(batch.frames)
        results[variant_name(backend, precision, patches)] = (scores, np.concatenate(order), engine.for_case(sweep))
    scores, order, engine = results["torch:fp32"]
    best = int(np.nanargmax(scores))
    position = int(np.flatnonzero(order == best)[0]) + 1
    images = sweep.layout.image_frames()
    threshold = engine.model.threshold
    agreement = {}
    for name, (fast_scores, _, fast_engine) in results.items():
        agreement[name] = {
            "engine": fast_engine.description,
            "decision_agreement": float(np.mean((scores[images] >= threshold) == (fast_scores[images] >= threshold))),
            "same_best_frame": best == int(np.nanargmax(fast_scores)),
            "max_abs_score_difference": float(np.nanmax(np.abs(scores[images] - fast_scores[images])))}
    return {"best_frame": best, "best_found_after_frames": position, "image_frames": len(images),
            "best_found_fraction": position / len(images), "agreement": agreement}


def parse_variants(text: str) -> list[tuple[str, str, str]]:
    """"backend:precision[:skip],..." -> (backend, precision, black patches) of those whose runtime is installed."""
    variants = [(*item.split(":")[:2], "skip" if item.endswith(":skip") else "keep") for item in text.split(",") if item]
    return [(backend, precision, patches) for backend, precision, patches in variants
            if backend == "auto" or installed(backend)]


def variant_name(backend: str, precision: str, patches: str) -> str:
    return f"{backend}:{precision}" + (":skip" if patches == "skip" else "")


def case_file(folder: Path) -> Path:
    """The benchmark's case as the app meets it: an .mha file on disk."""
    path = folder / "benchmark-case.mha"
    if not path.exists():
        write_case(make_case(CASE_SEED), folder)
        (folder / IMAGES_DIR).glob("*.mha").__next__().rename(path)
    return path


def child(args) -> None:
    folder = Path(args.work)
    if args.part == "prepare":
        random_weights_file(folder), adapter_file(folder), case_file(folder)
        print("RESULT {}")
        return
    sweep = load_case(case_file(folder))
    frames = sweep.frames[sweep.layout.image_frames()[: args.frames]]
    if args.part == "baseline":
        result = run_baseline(random_weights_file(folder), frames)
    elif args.part == "engine":
        result = run_engine(random_weights_file(folder), adapter_file(folder), sweep, frames, args.backend,
                            args.precision, args.black_patches)
    else:
        result = order_and_agreement(sweep, parse_variants(args.variants))
    result["image_frames_in_case"] = sweep.layout.n_images
    result["padding_fraction"] = float(sweep.layout.padding.mean())
    print("RESULT " + json.dumps(result))


def run_part(part: str, work: str, frames: int, backend: str = "torch", precision: str = "auto",
             variants: str = DEFAULT_VARIANTS, black_patches: str = "keep") -> dict:
    command = [sys.executable, __file__, "--part", part, "--work", work, "--frames", str(frames),
               "--backend", backend, "--precision", precision, "--variants", variants,
               "--black-patches", black_patches]
    # converted models go to a cache of the variant's own: its first start is cold, the user's cache untouched
    cache = "cache" + (f"-{backend}-{precision}-{black_patches}" if part == "engine" else "")
    env = {**os.environ, "XDG_CACHE_HOME": str(Path(work) / cache)}
    env.pop("FETAL_IQA_AUTO", None)  # `auto` as a user gets it: measured (in the run's own cache: cold)
    output = subprocess.run(command, capture_output=True, text=True, env=env)
    line = next((text for text in output.stdout.splitlines() if text.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{part} failed:\n{output.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32, help="frames timed per side (then extrapolated)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"backend:precision pairs for the engine (default {DEFAULT_VARIANTS})")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--gpu", action="store_true",
                        help="measure on a CUDA GPU instead: the paper's path against the engine in fp16 and bf16")
    parser.add_argument("--gpu-variants", default=GPU_VARIANTS,
                        help=f"with --gpu: precision:batch pairs for the engine (default {GPU_VARIANTS})")
    parser.add_argument("--repeats", type=int, default=3, help="with --gpu: timed passes over the case (median)")
    parser.add_argument("--part", choices=("prepare", "baseline", "engine", "order"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--black-patches", default="keep", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        child(args)
        return 0
    if args.gpu:
        return gpu_main(args)
    variants = parse_variants(args.variants)
    print(f"CPU: {cpu_summary()}")
    print("runtimes: " + ", ".join(f"{b} {runtime_version(b)}" for b in ("torch", *COMPILED)
                                    if runtime.installed(b)))
    with tempfile.TemporaryDirectory() as work:
        print("preparing random ViT-L/14 weights and adapter…", file=sys.stderr)
        # in a child too: Linux passes a parent's peak RSS on to the children it starts
        run_part("prepare", work, args.frames)
        baseline = run_part("baseline", work, args.frames)
        engines = []
        for backend, precision, patches in variants:
            name = variant_name(backend, precision, patches)
            print(f"engine {name}…", file=sys.stderr)
            cold = run_part("engine", work, args.frames, backend, precision, black_patches=patches)
            cached = (run_part("engine", work, args.frames, backend, precision, black_patches=patches)
                      if backend != "torch" else None)
            engines.append((name, cold, cached))
        order = None if args.skip_agreement else run_part("order", work, args.frames, variants=args.variants)
    images = baseline["image_frames_in_case"]
    base_fps = baseline["frames"] / baseline["seconds"]
    base_case = 840 / base_fps  # the baseline scores padding too
    print(f"case: 840 frames, {images} image frames ({baseline['padding_fraction']:.0%} padding); "
          f"each side timed on {args.frames} frames after a warm-up, extrapolated to the case; "
          f"full ViT-L/14, random weights, {os.cpu_count()} threads")
    print(f"| {'variant':34} | frames/s | case (s) | x paper (case) | load cold (s) | load cached (s) "
          f"| peak RSS cold / cached (MB) | demo: decisions = fp32 | same best frame | max score diff |")
    print("|" + "---|" * 10)
    print(f"| {'paper (LoRA unmerged, fp32, b32)':34} | {base_fps:8.2f} | {base_case:8.0f} | {1:14.2f} | "
          f"{baseline['load_s']:13.1f} | {'-':>15} | {baseline['peak_rss_mb']:27.0f} | - | - | - |")
    for name, cold, cached in engines:
        timed = cached or cold
        fps = timed["frames"] / timed["seconds"]
        case_s = images / fps
        agreement = (order or {}).get("agreement", {}).get(name)
        demo = (f"{agreement['decision_agreement']:.2%} | {agreement['same_best_frame']} | "
                f"{agreement['max_abs_score_difference']:.4f}" if agreement else "- | - | -")
        label = f"{name} = {timed['engine']}, b{timed['batch_size']}" + (
            f", {timed['dropped_patches']} patches skipped" if timed.get("dropped_patches") else "")
        cached_load = f"{cached['load_s']:.1f}" if cached else "-"
        peaks = f"{cold['peak_rss_mb']:.0f}" + (f" / {cached['peak_rss_mb']:.0f}" if cached else "")
        print(f"| {label:34} | {fps:8.2f} | {case_s:8.0f} | {base_case / case_s:14.2f} | {cold['load_s']:13.1f} | "
              f"{cached_load:>15} | {peaks:>27} | {demo} |")
    if order:
        print(f"best frame (torch fp32 order) first yielded after {order['best_found_after_frames']} of "
              f"{order['image_frames']} frames ({order['best_found_fraction']:.1%} of the pass)")
    return 0


# GPU mode (--gpu) ----------------------------------------------------------------------------------

GPU_VARIANTS = "fp16:32,fp16:64,fp16:128,bf16:32,bf16:64,bf16:128"


def gpu_main(args) -> int:
    """The paper's path and our engine on a CUDA GPU, in one process (GPU memory is counted by torch
    per variant, so no child processes are needed), on the whole synthetic case:
    - baseline: the paper's path on the GPU: fp32 (torch's defaults: no TF32 matmuls), LoRA not
      merged, batch 32, every frame of the case in order, preprocessed on the CPU as float RGB;
    - engine: each precision:batch of `--gpu-variants` (CUDA autocast; passes of `batch` frames,
      4 queued per step; frames sent as pinned uint8 and normalised on the GPU), scoring the case's
      image frames in the engine's own order. One engine is made and its precision and batch size
      changed per variant: on CUDA the weights stay fp32 and autocast picks the precision per pass;
    - agreement: the demo model's scores of the case, each variant against torch fp32 on the CPU.
    Timed over the whole case after a warm-up pass, the median of `--repeats`; not extrapolated."""
    if not torch.cuda.is_available():
        print(f"error: --gpu needs a CUDA GPU, and torch {torch.__version__} sees none here "
              f"({'built for CUDA ' + torch.version.cuda if torch.version.cuda else 'a build without CUDA'}). "
              "Run it where `fetal-iqa doctor` shows a CUDA GPU.", file=sys.stderr)
        return 2
    from dataclasses import replace
    from fetal_iqa_gui.engine.choice import cuda_has_bf16
    device = torch.device("cuda")
    properties = torch.cuda.get_device_properties(device)
    print(f"GPU: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, native bf16: {cuda_has_bf16()}; "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}; CPU (preprocessing): {cpu_summary()}")
    variants = [(precision, int(batch)) for precision, batch in (v.split(":") for v in args.gpu_variants.split(","))]
    skipped = [v for v in variants if v[0] == "bf16" and not cuda_has_bf16()]
    variants = [v for v in variants if v not in skipped]
    with tempfile.TemporaryDirectory() as work:
        print("preparing random ViT-L/14 weights, adapter and case…", file=sys.stderr)
        folder = Path(work)
        weights, adapter, sweep = random_weights_file(folder), adapter_file(folder), load_case(case_file(folder))
        baseline = gpu_baseline(weights, sweep, device, args.repeats)
        torch.cuda.empty_cache()  # the baseline's model is gone: its memory is not the engine's
        engine = make_engine(load_model(ModelSpec(weights=weights, adapter=adapter)),
                             EngineSettings(device.type, "fp32", 32, backend="torch"))
        rows = [gpu_engine(replace(engine, precision=p, batch_size=b), sweep, args.repeats) for p, b in variants]
        del engine
        agreement = gpu_agreement(sweep, device, variants)
    images = sweep.layout.n_images
    print(f"case: {sweep.n_frames} frames, {images} image frames; full ViT-L/14, random weights; "
          f"median of {args.repeats} timed passes over the whole case after a warm-up")
    print("| variant | frames/s | case (s) | x paper (case) | peak GPU memory (GB) | demo: decisions = CPU fp32 "
          "| same best frame | max score diff |")
    print("|" + "---|" * 8)
    print(f"| paper (LoRA unmerged, fp32, b32) | {baseline['frames'] / baseline['seconds']:.1f} | "
          f"{baseline['seconds']:.2f} | 1.00 | {baseline['peak_gb']:.2f} | - | - | - |")
    for (precision, batch), row in zip(variants, rows):
        demo = agreement[f"{precision}:{batch}"]
        print(f"| engine {precision} b{batch}{row['fallback']} | {images / row['seconds']:.1f} | "
              f"{row['seconds']:.2f} | {baseline['seconds'] / row['seconds']:.2f} | {row['peak_gb']:.2f} | "
              f"{demo['decisions']:.2%} | {demo['same_best_frame']} | {demo['max_difference']:.4f} |")
    demo = agreement["fp32"]
    print(f"demo model, CUDA fp32 against CPU fp32: decisions {demo['decisions']:.2%}, same best frame "
          f"{demo['same_best_frame']}, max score difference {demo['max_difference']:.5f}")
    for precision, batch in skipped:
        print(f"{precision} b{batch}: skipped (this GPU has no native bf16)")
    return 0


def gpu_timed(run, repeats: int) -> float:
    """Median seconds of `run()` after one untimed warm-up run."""
    run()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def gpu_baseline(weights: Path, sweep: Case, device: torch.device, repeats: int) -> dict:
    """The paper's path on the GPU: every frame, in order, batch 32, fp32."""
    config = fetalclip_config()
    visual = build_visual(config)
    load_visual_weights(visual, weights)
    torch.cuda.reset_peak_memory_stats(device)
    model = FetalCLIPClassifier(visual, config["embed_dim"]).eval().to(device)

    def run():
        with torch.inference_mode():
            for i in range(0, sweep.n_frames, 32):
                torch.sigmoid(model(frames_to_tensor(sweep.frames[i:i + 32]).to(device))).cpu()
    seconds = gpu_timed(run, repeats)
    return {"frames": sweep.n_frames, "seconds": seconds, "peak_gb": torch.cuda.max_memory_allocated(device) / 1e9}


def gpu_engine(engine, sweep: Case, repeats: int) -> dict:
    """Our engine on the case's image frames, in its order, as the app scores them."""
    print(f"engine {engine.precision} batch {engine.batch_size}…", file=sys.stderr)
    batch_size = engine.batch_size
    torch.cuda.reset_peak_memory_stats(engine.device)
    seconds = gpu_timed(lambda: sum(len(batch.frames) for batch in score_case(engine, sweep)), repeats)
    fallback = f" (short of memory: ended at b{engine.batch_size})" if engine.batch_size != batch_size else ""
    return {"seconds": seconds, "peak_gb": torch.cuda.max_memory_allocated(engine.device) / 1e9, "fallback": fallback}


def gpu_agreement(sweep: Case, device: torch.device, variants: list[tuple[str, int]]) -> dict:
    """With the demo model (trained weights: half-precision errors show): each variant, and CUDA
    fp32, against torch fp32 on the CPU."""
    from dataclasses import replace

    def scores_of(engine):
        scores = np.full(sweep.n_frames, np.nan, np.float32)
        for batch in score_case(engine, sweep):
            scores[batch.frames] = batch.scores
        return scores[sweep.layout.image_frames()]
    cpu = make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "fp32", 32, backend="torch"))
    reference, threshold = scores_of(cpu), cpu.model.threshold
    gpu = make_engine(load_model(ModelSpec.demo_model()), EngineSettings(device.type, "fp32", 32, backend="torch"))
    results = {}
    for name, precision, batch in [("fp32", "fp32", 32), *((f"{p}:{b}", p, b) for p, b in variants)]:
        scores = scores_of(replace(gpu, precision=precision, batch_size=batch))
        results[name] = {"decisions": float(np.mean((scores >= threshold) == (reference >= threshold))),
                         "same_best_frame": int(np.argmax(scores)) == int(np.argmax(reference)),
                         "max_difference": float(np.abs(scores - reference).max())}
    return results


if __name__ == "__main__":
    sys.exit(main())
