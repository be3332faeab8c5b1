"""Frames per second of FetalCLIP_CLS (ViT-L/14, random weights: speed does not depend on their
values) with every token and with a synthetic case's black patches skipped, in the same run
(the machine may be shared: the ratio is what to read), and the cost of finding those patches
on an 840-frame case.

    python benchmarks/bench_tokens.py [--frames 16] [--openvino] [--int8]

`--openvino` adds OpenVINO fp32, `--int8` OpenVINO static int8 (what `auto` runs on a CPU where it
is fastest; NNCF calibrated on 4 of the frames, converting takes minutes and about 4.5 GB each).
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
    parser.add_argument("--int8", action="store_true", help="also OpenVINO static int8 (NNCF, as the engine converts)")
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
    for precision in [p for p, asked in (("fp32", args.openvino), ("int8", args.int8)) if asked]:
        rates = [openvino_rate(module, images, precision) for module in (model, subset)]
        print(f"openvino {precision}: every token {rates[0]:.3f} frames/s, skipping {rates[1]:.3f} frames/s: "
              f"x{rates[1] / rates[0]:.2f}")


def openvino_rate(module, images: np.ndarray, precision: str) -> float:
    """Frames per second of `module` converted for OpenVINO (static int8: NNCF as the engine runs it)."""
    import openvino as ov

    from fetal_iqa_gui.engine.converters import convert_for_openvino, quiet_nncf
    ov_model = convert_for_openvino(module)
    if precision == "int8":
        with quiet_nncf() as nncf:
            samples = [images[i:i + 1] for i in range(4)]
            ov_model = nncf.quantize(ov_model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                     subset_size=len(samples))
    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}
    request = ov.Core().compile_model(ov_model, "CPU", config).create_infer_request()
    return rate(lambda x: request.infer([x]), images)


if __name__ == "__main__":
    main()
