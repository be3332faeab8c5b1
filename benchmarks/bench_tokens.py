"""Frames per second of FetalCLIP_CLS (ViT-L/14, random weights: speed does not depend on their
values) with every token and with a synthetic case's black patches skipped, in the same run
(the machine may be shared: the ratio is what to read), and the cost of finding those patches
on an 840-frame case.

    python benchmarks/bench_tokens.py [--frames 16] [--openvino]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fetal_iqa_gui.base.resources import fetalclip_config  # noqa: E402
from fetal_iqa_gui.case.case import Case  # noqa: E402
from fetal_iqa_gui.case.synthetic import make_case  # noqa: E402
from fetal_iqa_gui.engine.cpu import cpu_summary, default_threads  # noqa: E402
from fetal_iqa_gui.engine.preprocess import frames_to_tensor  # noqa: E402
from fetal_iqa_gui.engine.tokens import black_patch_indices  # noqa: E402
from fetal_iqa_gui.model.checkpoint import build_model  # noqa: E402
from fetal_iqa_gui.model.networks import merge_for_inference, tower_of  # noqa: E402
from fetal_iqa_gui.model.token_subset import kept_tokens, on_subset  # noqa: E402


def rate(run, images: np.ndarray, batch: int = 8) -> float:
    run(images[:2])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(images), batch):
        run(images[i:i + batch])
    return len(images) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--openvino", action="store_true", help="also OpenVINO fp32 (converted from torch)")
    args = parser.parse_args()
    torch.set_num_threads(default_threads())
    print(cpu_summary(), f"| {torch.get_num_threads()} threads")
    case = Case.from_array(make_case(2024, frames_per_sweep=140).frames)
    started = time.perf_counter()
    black = black_patch_indices(case, (14, 14))
    print(f"black patches of {case.n_frames} frames ({len(case.layout.image_frames())} images): {len(black)} of 256 "
          f"in {time.perf_counter() - started:.2f} s")
    torch.manual_seed(0)
    model = merge_for_inference(build_model("classification", fetalclip_config()).eval().requires_grad_(False))
    keep = kept_tokens(black, tower_of(model.encoder).grid_size)
    subset = on_subset(model, keep)
    images = frames_to_tensor(case.frames[case.layout.spread_image_frames(args.frames)]).numpy()
    runs = {"torch fp32": (model, subset)}
    for name, (full, part) in runs.items():
        with torch.inference_mode():
            every = rate(lambda x: full(torch.from_numpy(x)), images)  # noqa: B023 (called at once)
            skipping = rate(lambda x: part(torch.from_numpy(x)), images)  # noqa: B023
        print(f"{name}: every token {every:.3f} frames/s, skipping {skipping:.3f} frames/s: x{skipping / every:.2f}")
    if args.openvino:
        import openvino as ov

        from fetal_iqa_gui.engine.compiled import convert_for_openvino
        config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32"}
        rates = []
        for module in (model, subset):
            compiled = ov.Core().compile_model(convert_for_openvino(module), "CPU", config)
            request = compiled.create_infer_request()
            rates.append(rate(lambda x: request.infer([x]), images))  # noqa: B023 (called at once)
            del compiled, request
        print(f"openvino fp32: every token {rates[0]:.3f} frames/s, skipping {rates[1]:.3f} frames/s: "
              f"x{rates[1] / rates[0]:.2f}")


if __name__ == "__main__":
    main()
