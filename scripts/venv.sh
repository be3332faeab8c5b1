# Sourced by run-demo, run-tests and .ci/run: makes sure the virtual environment exists and is
# current, then sets VENV. The environment is reused while pyproject.toml is unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FETAL_IQA_VENV:-$ROOT/.venv}"
KEY="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$(cat "$VENV/.fetal-iqa-key" 2>/dev/null)" != "$KEY" ]; then
    echo "Setting up the Python environment in $VENV (first run: several minutes)..." >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    if [ "$(uname -m)" = "x86_64" ] && [ -f /etc/xdg/pip/constraints.txt ]; then
        # these machines carry torch 2.14.1 and a torchvision that imports beside it on local disk
        "$VENV/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
    fi
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test,cluster,cpu]"
    echo "$KEY" > "$VENV/.fetal-iqa-key"
else
    # the checkout may have moved (CI clones anew): point the editable install here, fast
    "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT" 2>/dev/null \
        || "$VENV/bin/python" -m pip install --quiet --no-deps -e "$ROOT"
fi
export VENV
