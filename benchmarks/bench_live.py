"""Live mode benchmark: a synthetic case played as a live source at 30 frames/s, scored as it comes.

    python benchmarks/bench_live.py [--frames-per-sweep 60] [--engines torch:fp32,torch:int8] [--device cpu]

The case (the real frame size, 744 x 562; 6 sweeps) is written as a lossless FFV1 video and played by
`fetal_iqa_gui.live` exactly as `fetal-iqa live VIDEO --record FILE` plays it: every frame recorded,
the newest scored by the demo CLS model whenever the engine is free. Printed per engine: the delay from
a frame's arrival to its score (median, 95th percentile), the fraction of frames scored, the rate the
frames arrived (what a display shows), the longest gap between two frames, and dropped frames (frames
of the file never delivered, or delivered more than one frame period late); and the CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fetal_iqa_gui.case.synthetic import make_case
from fetal_iqa_gui.engine.choice import EngineSettings
from fetal_iqa_gui.engine.cpu import cpu_summary
from fetal_iqa_gui.engine.scoring import make_engine
from fetal_iqa_gui.live.recording import Recording
from fetal_iqa_gui.live.session import LiveSession
from fetal_iqa_gui.live.source import open_source, write_lossless_video
from fetal_iqa_gui.model.loading import load_model
from fetal_iqa_gui.model.spec import ModelSpec

RATE = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames-per-sweep", type=int, default=60)
    parser.add_argument("--engines", default="torch:fp32,torch:int8", help="backend:precision, comma separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    case = make_case(args.seed, frames_per_sweep=args.frames_per_sweep)
    print(f"{cpu_summary()}; {len(case.frames)} frames "
          f"of 744 x 562 at {RATE:.0f} frames/s ({len(case.frames) / RATE:.0f} s)")
    with tempfile.TemporaryDirectory() as folder:
        video = write_lossless_video(Path(folder) / "case.mkv", case.frames, RATE)
        for engine_name in args.engines.split(","):
            backend, precision = engine_name.split(":")
            engine = make_engine(load_model(ModelSpec.demo_model()),
                                 EngineSettings(args.device, precision, 1, backend=backend))
            source = open_source(video)
            recording = Recording(Path(folder) / f"{backend}-{precision}.mha", source.name, source.frame_rate)
            session = LiveSession(source, lambda frames, engine=engine: engine.predict(frames)[0], engine.model.threshold, recording)
            session.warm_up()
            arrivals = []
            started = time.monotonic()
            for frame in session.frames():
                arrivals.append(frame.arrived)
            summary = session.summary
            arrivals = np.asarray(arrivals)
            late = int(np.count_nonzero(arrivals - (arrivals[0] + np.arange(len(arrivals)) / RATE) > 1 / RATE))
            dropped = len(case.frames) - summary.frames + late
            delays = summary.delays_s * 1000
            print(f"{engine.description:>24}: delay median {np.median(delays):.0f} ms, 95th percentile "
                  f"{np.percentile(delays, 95):.0f} ms; scored {summary.scored_fraction:.0%} of {summary.frames} "
                  f"frames ({summary.scored / (time.monotonic() - started):.1f} frames/s); frames arrived at "
                  f"{summary.frame_rate:.1f} frames/s, longest gap {np.diff(arrivals).max() * 1000:.0f} ms; "
                  f"dropped {dropped}; recorded {summary.recording.stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
