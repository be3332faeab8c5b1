"""Heat map benchmark: the pointing game of both methods on synthetic good frames, and their cost.

    python benchmarks/bench_heatmap.py [--cases 12] [--seed 1] [--frames-per-sweep 140] [--smoothing 1.25]

For each synthetic case (the real frame size, 744 x 562, and fan; 6 sweeps) every annotated frame
(the abdomen in plane: the frames a model should call good) is explained by the demo CLS model
with Grad-CAM and with attention rollout (engine/explain.py). A hit: the map's peak, in the
frame's own pixels, lies inside the abdomen's mask; "near": within half a patch of it (the map's
resolution). Printed per method: hits, near hits, over all annotated frames, over the optimal
ones, and over those the model itself scores good; the median seconds per map on this CPU. For
scale, the same game played by a constant guess, the frame's centre (the abdomen often lies there),
and over the frames where that guess misses. `--smoothing`: the Gaussian over the patch grid, in
patches (explain.SMOOTHING_PATCHES by default; 0: none).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fetal_iqa_gui.case.acouslic import LABEL_OPTIMAL
from fetal_iqa_gui.case.synthetic import make_case
from fetal_iqa_gui.engine import explain
from fetal_iqa_gui.engine.preprocess import frames_to_tensor
from fetal_iqa_gui.model.loading import load_model
from fetal_iqa_gui.model.spec import ModelSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1, help="the first case's seed (then seed + 1, ...)")
    parser.add_argument("--frames-per-sweep", type=int, default=140)
    parser.add_argument("--smoothing", type=float, default=explain.SMOOTHING_PATCHES)
    args = parser.parse_args()
    model = load_model(ModelSpec.demo_model("classification"))
    module = model.module
    rows, seconds = [], {method: [] for method in explain.METHODS}
    for seed in range(args.seed, args.seed + args.cases):
        case = make_case(seed, frames_per_sweep=args.frames_per_sweep)
        annotated = np.flatnonzero(case.masks.reshape(len(case.masks), -1).any(1))
        with torch.no_grad():
            scores = torch.sigmoid(module(frames_to_tensor(case.frames[annotated]))).numpy()
        half_patch = explain.patch_size_in_frame(module, case.frames.shape[1:]) / 2
        for frame, score in zip(annotated, scores):
            mask = case.masks[frame] > 0
            for method in explain.METHODS:
                started = time.perf_counter()
                heat = explain.explain(module, case.frames[frame], method, args.smoothing)
                seconds[method].append(time.perf_counter() - started)
                height, width = mask.shape
                rows.append((method, case.masks[frame].max() == LABEL_OPTIMAL, score >= model.threshold,
                             explain.points_at(heat, mask), explain.points_at(heat, mask, half_patch),
                             bool(mask[height // 2, width // 2])))
        print(f"case seed {seed}: {len(annotated)} annotated frames", flush=True)
    print(f"\n{args.cases} synthetic cases from seed {args.seed}, demo CLS model, threshold {model.threshold:.3f}, "
          f"smoothing {args.smoothing:g} patches")
    centre = np.mean([r[5] for r in rows if r[0] == explain.DEFAULT_METHOD])
    print(f"the frame's centre, a constant guess: inside on {100 * centre:5.1f} % of all annotated frames")
    for title, keep in (("all annotated frames", lambda r: True), ("optimal frames", lambda r: r[1]),
                        ("frames the model scores good", lambda r: r[2]),
                        ("frames the centre misses", lambda r: not r[5])):
        for method in explain.METHODS:
            picked = [r for r in rows if r[0] == method and keep(r)]
            inside, near = np.mean([r[3] for r in picked]), np.mean([r[4] for r in picked])
            print(f"{title:30s} {method:8s} n={len(picked):4d}  peak inside {100 * inside:5.1f} %  "
                  f"within half a patch {100 * near:5.1f} %")
    for method, times in seconds.items():
        print(f"{method}: median {1000 * np.median(times):.1f} ms a map ({torch.get_num_threads()} torch threads)")


if __name__ == "__main__":
    main()
