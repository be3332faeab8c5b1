"""Start-up benchmark: how long until the main window is on screen, against a bare PySide6 window.

    python benchmarks/bench_startup.py [--runs 5]

Each run is a fresh Python process (offscreen Qt) that builds a window, shows it and processes
the pending events; the time counted is from just before the process is started until then, so
it includes the interpreter's start and every import, as a user waiting for the window sees it.
The bare window is a QMainWindow; the app's is fetal-iqa's MainWindow with no sweep open. The
ratio of the medians is the figure of merit (the issue's goal: at most 10).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHOW = "w.show(); app.processEvents(); print(time.time())"
BARE = ("import time, sys\nfrom PySide6.QtWidgets import QApplication, QMainWindow\n"
        f"app = QApplication(sys.argv[:1]); w = QMainWindow(); w.resize(1280, 820); {SHOW}\n")
APP = ("import time, sys\nfrom PySide6.QtWidgets import QApplication\n"
       "from fetal_iqa_gui.gui.main_window import MainWindow\n"
       f"app = QApplication(sys.argv[:1]); w = MainWindow(); {SHOW}\n"
       "heavy = [m for m in ('torch', 'open_clip', 'peft') if m in sys.modules]\n"
       "print(','.join(heavy))\n")


def time_once(code: str, env: dict) -> tuple[float, str]:
    started = time.time()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    lines = result.stdout.split("\n")
    return float(lines[0]) - started, lines[1].strip() if len(lines) > 1 else ""


def cpu_description() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Flags")
    return "\n".join(f"  {key}: {fields[key].strip()}" for key in keep if key in fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each window (default 5)")
    args = parser.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    time_once(BARE, env)  # a first run warms the disk cache for both
    time_once(APP, env)
    bare, app, heavy = [], [], set()
    for _ in range(args.runs):  # interleaved: a load change on the machine hits both alike
        bare.append(time_once(BARE, env)[0])
        seconds, imported = time_once(APP, env)
        app.append(seconds)
        heavy.update(filter(None, imported.split(",")))
    bare_median, app_median = statistics.median(bare), statistics.median(app)
    print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    print(cpu_description())
    print(f"bare QMainWindow: median {bare_median:.3f} s over {args.runs} runs ({', '.join(f'{t:.3f}' for t in bare)})")
    print(f"fetal-iqa window: median {app_median:.3f} s over {args.runs} runs ({', '.join(f'{t:.3f}' for t in app)})")
    print(f"imported before the window showed: {', '.join(sorted(heavy)) or 'none of torch, open_clip, peft'}")
    print(f"ratio of medians: {app_median / bare_median:.1f}x (goal: at most 10x)")


if __name__ == "__main__":
    main()
