"""Soak test: one `fetal-iqa score --out-dir` over many small sweeps, its resident memory sampled.

    python scripts/soak_batch.py [--sweeps 500] [--frames 4]

Writes `--sweeps` synthetic sweeps (the real frame size and fan, `--frames` frames each) into a
temporary folder, scores them all in one process with the demo model (torch fp32, no score
cache), samples that process's resident memory every 0.2 s and, from its finished-case markers,
which case it was on. Prints the peak over the first 20 cases and over the rest: a leak shows as a
rest well above the first (the README's figure). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fetal_iqa_gui.case.synthetic import make_case  # noqa: E402
from fetal_iqa_gui.engine.cpu import cpu_summary  # noqa: E402


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as file:
            line = next(line for line in file if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=500, help="how many sweeps (default: 500)")
    parser.add_argument("--frames", type=int, default=4, help="frames per sweep (default: 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fetal-iqa-soak-") as work:
        inputs, out = Path(work) / "sweeps", Path(work) / "scores"
        inputs.mkdir()
        frames = make_case(5, frames_per_sweep=max(args.frames, 8)).frames
        content = frames[frames.reshape(len(frames), -1).max(axis=1) > 0]
        for i in range(args.sweeps):  # each sweep its own pixels: the score cache is off, but hashes differ
            sweep = np.roll(content[i % (len(content) - args.frames):][:args.frames], i, axis=2)
            sitk.WriteImage(sitk.GetImageFromArray(np.ascontiguousarray(sweep)), str(inputs / f"sweep{i:04d}.mha"))
        command = [sys.executable, "-m", "fetal_iqa_gui", "score", str(inputs), "--out-dir", str(out),
                   "--model", "demo", "--device", "cpu", "--backend", "torch", "--precision", "fp32", "--no-cache"]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: list[tuple[int, float]] = []  # (cases finished, RSS MB)
        while process.poll() is None:
            rss = rss_mb(process.pid)
            done = len(list((out / ".done").glob("*"))) if (out / ".done").is_dir() else 0
            if rss is not None:
                samples.append((done, rss))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        finished = len(list((out / ".done").glob("*"))) if (out / ".done").is_dir() else 0
    first = max((rss for done, rss in samples if done < 20), default=float("nan"))
    rest = max((rss for done, rss in samples if done >= 20), default=float("nan"))
    last = max((rss for done, rss in samples if done >= args.sweeps - 50), default=float("nan"))
    print(f"CPU: {cpu_summary()}")
    print(f"{finished}/{args.sweeps} sweeps of {args.frames} frames in {elapsed:.0f} s (exit {process.returncode}); "
          f"peak RSS: first 20 cases {first:.0f} MB, the rest {rest:.0f} MB, the last 50 {last:.0f} MB "
          f"({rest / first:.2f}x the first 20)")
    return 0 if process.returncode == 0 and finished == args.sweeps else 1


if __name__ == "__main__":
    sys.exit(main())
