#!/usr/bin/env bash
# CI, after the tests: build the wheel, install it (not editable) apart from the checkout, and use
# it from another folder as a new user would: synth, score with the demo model, measure,
# --version, and the demo window (offscreen, closed after a few seconds). The test environment's
# packages serve the wheel's dependencies; nothing is downloaded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${FETAL_IQA_VENV:-$ROOT/.venv}/bin/python"
[ -x "$PYTHON" ] || { echo "wheel smoke: no test environment at $PYTHON; run ./run-tests first" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
step() { echo "wheel smoke: $*" >&2; }

# from a copy of the sources: an in-tree build would leave build/ and *.egg-info in the checkout
mkdir "$WORK/src"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard | (cd "$ROOT" && tar -c --null -T -) \
    | tar -x -C "$WORK/src"
step "building the wheel"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation "$WORK/src" -w "$WORK/dist" 2>/dev/null \
    || "$PYTHON" -m pip wheel --quiet --no-deps "$WORK/src" -w "$WORK/dist"
"$PYTHON" -m pip install --quiet --no-deps --target "$WORK/site" "$WORK"/dist/fetal_iqa-*.whl
step "the package index description links no picture it cannot show"
"$PYTHON" -c "import sys, zipfile; w = zipfile.ZipFile(sys.argv[1])
sys.stdout.write(w.read(next(n for n in w.namelist() if n.endswith('.dist-info/METADATA'))).decode())" \
    "$WORK"/dist/fetal_iqa-*.whl > "$WORK/METADATA"
grep -q "^# fetal-iqa" "$WORK/METADATA" || { echo "wheel smoke: the wheel has no description" >&2; exit 1; }
if grep -En '\]\((resources|benchmarks|docs|scripts)/' "$WORK/METADATA"; then
    echo "wheel smoke: the description links files of the checkout, broken on a package index" >&2; exit 1
fi
step "the sdist carries the tests, the benchmarks and CI's scripts"
(cd "$WORK/src" && "$PYTHON" -c "import setuptools.build_meta as b; b.build_sdist('$WORK/sdist')" >/dev/null 2>&1)
tar -tzf "$WORK"/sdist/fetal_iqa-*.tar.gz > "$WORK/sdist/members"
for member in tests/conftest.py tests/gui/test_user_paths.py benchmarks/bench_scoring.py scripts/venv.sh run-tests; do
    grep -q "^fetal_iqa-[^/]*/$member\$" "$WORK/sdist/members" \
        || { echo "wheel smoke: the sdist lacks $member" >&2; exit 1; }
done

# outside the checkout, with the user's folders (settings, caches, logs, models) of its own
mkdir "$WORK/run" && cd "$WORK/run"
export PYTHONPATH="$WORK/site" QT_QPA_PLATFORM=offscreen
export XDG_CONFIG_HOME="$WORK/home/config" XDG_CACHE_HOME="$WORK/home/cache" XDG_DATA_HOME="$WORK/home/data" \
    XDG_STATE_HOME="$WORK/home/state"
"$PYTHON" -c "import fetal_iqa_gui, sys; from pathlib import Path
sys.exit(0 if Path(fetal_iqa_gui.__file__).is_relative_to('$WORK/site') else f'imported {fetal_iqa_gui.__file__}, not the wheel')"
fiqa() { "$PYTHON" -m fetal_iqa_gui "$@"; }

step "--version"
[ "$(fiqa --version)" = "fetal-iqa $("$PYTHON" -c 'import fetal_iqa_gui; print(fetal_iqa_gui.__version__)')" ]
"$WORK/site/bin/fetal-iqa" --version >/dev/null  # the installed script runs too

step "synth, score --model demo"
fiqa synth cases --cases 1 --frames-per-sweep 12 >/dev/null
fiqa score cases/images/stacked_fetal_ultrasound/*.mha --model demo --device cpu --out scores.csv \
    --export-best best >/dev/null
[ "$(wc -l < scores.csv)" -eq 73 ]  # a header and 6 x 12 frames
ls best/*.json >/dev/null

step "score --model demo-seg (the shipped segmentation demo)"
fiqa score cases/images/stacked_fetal_ultrasound/*.mha --model demo-seg --device cpu --out seg.csv \
    --challenge-output challenge >/dev/null
[ "$(wc -l < seg.csv)" -eq 73 ]
ls challenge/*/fetal-abdomen-frame-number.json >/dev/null

step "measure"
"$PYTHON" -c "import cv2, numpy as np
mask = np.zeros((562, 744), np.uint8)
cv2.imwrite('mask.png', cv2.ellipse(mask, (372, 281), (150, 110), 0, 0, 360, 1, -1))"
fiqa measure mask.png --spacing 0.28 | grep "^AC 2[0-9][0-9]\.[0-9] mm" >/dev/null  # 230 mm

step "the demo window, offscreen, closed after 5 s"
FETAL_IQA_QUIT_AFTER_S=5 timeout 120 "$PYTHON" -m fetal_iqa_gui demo 2> demo.err \
    || { cat demo.err >&2; exit 1; }
if grep -q Traceback demo.err; then cat demo.err >&2; exit 1; fi
step "passed"
