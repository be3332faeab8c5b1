"""The paper's path against `fetal-iqa score`'s engine, timed in turns in one process: for a machine
that other work shares, where timing one side after the other measures the load's drift as much as
the engines (a sequential run here put skipping below every patch; in turns it was 1.7x above).

    python benchmarks/bench_interleaved.py [--frames 16] [--rounds 3] [--work DIR] [--variants ...]

Full ViT-L/14 FetalCLIP_CLS with random weights (speed does not depend on their values), the
benchmark case of bench_scoring.py. Each round times every side on the same `--frames` image
frames, in the same order; the ratio per round is what to read, and its spread says how much the
load moved. The whole-case ratio counts what each side scores of the 840-frame case: the paper's
path every frame (padding too), the engine the image frames. The engines are made as the app
makes them (converted once into `--work`'s cache, which a later run reuses; agreement checks taken
as passed: with random weights they mean nothing, bench_scoring.py measures them on the demo model).
Start and memory are bench_scoring.py's to measure: each side there has a process of its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scoring  # noqa: E402
from fetal_iqa_gui.case.loading import load_case  # noqa: E402
from fetal_iqa_gui.engine import agreement, tokens  # noqa: E402
from fetal_iqa_gui.engine import compiled as runtime  # noqa: E402
from fetal_iqa_gui.engine.choice import EngineSettings  # noqa: E402
from fetal_iqa_gui.engine.cpu import cpu_summary, default_threads  # noqa: E402
from fetal_iqa_gui.engine.preprocess import frames_to_tensor  # noqa: E402
from fetal_iqa_gui.engine.scoring import make_engine  # noqa: E402
from fetal_iqa_gui.model.loading import ModelSpec, load_model  # noqa: E402

DEFAULT_VARIANTS = "auto:auto:skip,auto:auto:keep"  # backend:precision:black patches


def paper_path(weights: Path):
    """The paper's inference (bench_scoring.paper_model), eager, with its sigmoid."""
    model = bench_scoring.paper_model(weights)
    return lambda frames: torch.sigmoid(model(frames_to_tensor(frames)))


def timed(run, frames: np.ndarray, batch: int) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(frames), batch):
            run(frames[i:i + batch])
    return len(frames) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="image frames timed per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", help="where the weights, the case and the converted models are kept (reused)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"default {DEFAULT_VARIANTS}")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="fetal-iqa-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # converted models: the run's own, the user's untouched
    os.environ.pop("FETAL_IQA_AUTO", None)  # `auto` as a user gets it
    runtime.agrees = tokens.agrees = lambda *args: (1.0, True)  # random weights: see the docstring
    agreement.needs_check = lambda *args: False
    torch.set_num_threads(default_threads())
    print(f"CPU: {cpu_summary()} | {torch.get_num_threads()} threads", flush=True)
    weights, adapter = bench_scoring.random_weights_file(work), bench_scoring.adapter_file(work)
    sweep = load_case(bench_scoring.case_file(work))
    frames = sweep.frames[sweep.layout.spread_image_frames(args.frames)]
    sides = {"paper (LoRA unmerged, fp32, b32)": (paper_path(weights), 32)}
    for variant in args.variants.split(","):
        backend, precision, patches = variant.split(":")
        started = time.perf_counter()
        settings = EngineSettings(precision=precision, backend=backend, black_patches=patches)
        engine = make_engine(load_model(ModelSpec(weights=weights, adapter=adapter)), settings).for_case(sweep)
        print(f"{variant}: {engine.description}, b{engine.batch_size}, made in {time.perf_counter() - started:.0f} s",
              flush=True)
        sides[f"{variant} = {engine.description}"] = (engine.predict, engine.batch_size)
    for run, batch in sides.values():
        timed(run, frames[:2], batch)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        for name, (run, batch) in sides.items():
            rates[name].append(timed(run, frames, batch))
        print(f"round {round_ + 1}: " + ", ".join(f"{rates[name][-1]:.2f}" for name in sides) + " frames/s", flush=True)
    paper = list(sides)[0]
    images = sweep.layout.n_images
    print(f"case: {sweep.n_frames} frames, {images} image frames; {args.frames} frames a side a round, "
          f"{args.rounds} rounds in turns")
    print("| side | frames/s (median) | x paper per frame, per round | x paper, whole case (median) |")
    print("|---|---|---|---|")
    for name in sides:
        per_round = [ours / theirs for ours, theirs in zip(rates[name], rates[paper])]
        whole = statistics.median(per_round) * sweep.n_frames / images
        print(f"| {name} | {statistics.median(rates[name]):.2f} | "
              f"{', '.join(f'{r:.2f}' for r in per_round)} | {whole if name != paper else 1:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
