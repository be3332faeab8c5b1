#!/usr/bin/env bash
# The version floors, proved: every direct dependency at the lowest version pyproject.toml allows
# (uv's lowest-direct resolution, frozen in requirements-lowest.txt; torch pinned to this machine's
# local build) in a second environment, cached outside the checkout per resolution, running the
# fast part of the suite. `scripts/lowest_direct.sh --compile` re-resolves after a floor changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$ROOT/requirements-lowest.txt"
if [ "${1:-}" = "--compile" ]; then
    UV="$(command -v uv || true)"
    if [ -z "$UV" ]; then python3 -m venv /tmp/fetal-iqa-uv && /tmp/fetal-iqa-uv/bin/pip install -q uv; UV=/tmp/fetal-iqa-uv/bin/uv; fi
    printf 'torch==2.14.1\ntorchvision==0.29.1\n' > /tmp/fetal-iqa-torch-pin.txt
    indexes=()
    for index in /opt/pypi-more/simple /opt/pypi/simple; do [ -d "$index" ] && indexes+=(--extra-index-url "file://$index"); done
    [ -d /opt/wheels ] && indexes+=(--find-links /opt/wheels)
    "$UV" pip compile "$ROOT/pyproject.toml" --extra test --resolution lowest-direct --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 --override /tmp/fetal-iqa-torch-pin.txt --index-strategy unsafe-best-match \
        "${indexes[@]}" --no-header --no-annotate --quiet -o "$LOCK"
    echo "wrote $LOCK"; exit 0
fi
KEY="$(cat "$ROOT/pyproject.toml" "$LOCK" | sha256sum | cut -c1-16)"
LOWEST="${FETAL_IQA_LOWEST_VENV:-$HOME/.cache/fetal-iqa/lowest-venv-$KEY}"
if [ "$(cat "$LOWEST/.fetal-iqa-key" 2>/dev/null)" != "$KEY" ]; then
    echo "Setting up the lowest-versions environment in $LOWEST (first run: several minutes)..." >&2
    rm -rf "$LOWEST"
    python3 -m venv "$LOWEST"
    "$LOWEST/bin/python" -m pip install --quiet --upgrade pip
    "$LOWEST/bin/python" -m pip install --quiet -r "$LOCK"
    echo "$KEY" > "$LOWEST/.fetal-iqa-key"
fi
# the checkout itself, without letting pip move any floor upwards
"$LOWEST/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT" 2>/dev/null \
    || "$LOWEST/bin/python" -m pip install --quiet --no-deps -e "$ROOT"
"$LOWEST/bin/python" -m pip check
cd "$ROOT"
fast_suite() { QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" "$LOWEST/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" "$@"; }
# the core, then the window, each in a process of its own, as .ci/run runs them: the GUI tests after the
# core's in one process crash it now and then (SIGSEGV while collecting garbage; cause not found yet)
if [ "$#" -eq 0 ]; then fast_suite tests/core && fast_suite tests/gui; else fast_suite "$@"; fi
