"""Fail when a package's line coverage falls below its floor; CI runs it on coverage's JSON report.

Floors only rise: each is the coverage measured when it was last set, rounded down. Raise one
when the report says there is room; the targets are where the floors should get to.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# package (a folder of the source tree): (floor, target), in % of lines. Floors first measured on
# 2026-11-29, raised after the GUI's user-path tests; the core's rooms (base ... runs, cli) were one
# floor of 90 % until the redesign of 2026-12-03 split them into folders: each floor is a point
# under what it measured then (base 95.7, case 93.8, model 93.3, review 95.9, gui 94.5 %; engine and
# runs, 88.6 and 89.9 %, were tested up to the core's 90 %).
# Targets from issue #18: 90 % for the core, 85 % for gui/.
FLOORS = {
    "fetal_iqa_gui/base": (94, 90),
    "fetal_iqa_gui/case": (92, 90),
    "fetal_iqa_gui/model": (92, 90),
    "fetal_iqa_gui/engine": (90, 90),
    "fetal_iqa_gui/review": (94, 90),
    "fetal_iqa_gui/runs": (90, 90),
    "fetal_iqa_gui/training": (94, 90),
    "fetal_iqa_gui/cli": (90, 90),
    "fetal_iqa_gui/gui": (93, 85),
}
# Code that runs only with an optional extra CI does not install (the compiled CPU backends need
# `[cpu]`: ONNX Runtime, OpenVINO, NNCF): reported, not held to a floor it cannot reach there. Its
# tests (tests/core/engine/test_backends.py) run wherever the extra is installed.
OPTIONAL = {"fetal_iqa_gui/engine/compiled.py"}


def line_coverage(report: dict) -> dict[str, tuple[int, int]]:
    """(covered lines, lines) per package of FLOORS; a file counts for the folder that holds it."""
    totals = {package: [0, 0] for package in FLOORS}
    for name, entry in report["files"].items():
        parts = Path(name).parent.parts
        top = len(parts) - 1 - parts[::-1].index("fetal_iqa_gui") if "fetal_iqa_gui" in parts else 0
        package = "/".join(parts[top:])  # relative to the checkout, wherever coverage ran
        if f"{package}/{Path(name).name}" in OPTIONAL:
            summary = entry["summary"]
            print(f"{package}/{Path(name).name}: {summary['covered_lines']} of {summary['num_statements']} lines "
                  "(an optional extra's code: not held to the floor)")
            continue
        if package in totals:
            totals[package][0] += entry["summary"]["covered_lines"]
            totals[package][1] += entry["summary"]["num_statements"]
    return {package: (covered, lines) for package, (covered, lines) in totals.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: coverage_floors.py COVERAGE_JSON (from pytest --cov-report=json:PATH)", file=sys.stderr)
        return 2
    measured = line_coverage(json.loads(Path(argv[0]).read_text()))
    failed = []
    print(f"{'package':24} {'lines':>7} {'floor':>6} {'target':>7}")
    for package, (floor, target) in FLOORS.items():
        covered, lines = measured[package]
        if not lines:
            failed.append(package)
            print(f"{package:24} no files in the report")
            continue
        percent = 100 * covered / lines
        note = "  below the floor" if percent < floor else f"  room to raise the floor to {int(percent)}" \
            if int(percent) > floor else ""
        print(f"{package:24} {percent:6.1f}% {floor:5d}% {target:6d}%{note}")
        if percent < floor:
            failed.append(package)
    if failed:
        print(f"error: line coverage is below the floor in {', '.join(failed)}: test the new code "
              "(the floors are in scripts/coverage_floors.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
