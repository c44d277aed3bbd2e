#!/usr/bin/env bash
# Create (or reuse) a virtual environment with the tested stack and mmdynbnn installed in development mode.
# Idempotent: once set up, a second run only checks and returns in a few seconds.
#
#   bash tools/setup_env.sh
#
# Environment:
#   VENV            where the environment lives (default: <repo>/.venv)
#   PYTHON          interpreter that creates it (default: python3; Python 3.9-3.11)
#   PIP_FIND_LINKS  extra wheel folders pip looks in first (e.g. a prebuilt mmcv wheel); without one,
#                   mmcv 2.1.0 is compiled from source against the installed torch (about 11 min on 2 cores)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$REPO/.venv}
PY="$VENV/bin/python"
STAMP="$VENV/.mmdynbnn-setup"
want=$(cat "$REPO"/requirements/*.txt "$REPO/setup.py" | sha256sum | cut -d' ' -f1)

ready() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want:$REPO" ] &&
    "$PY" -c "import mmcv._ext, mmdet, mmpretrain, mmdynbnn, os, sys; \
sys.exit(not mmdynbnn.__file__.startswith(os.path.join('$REPO', '')))" 2>/dev/null
}

if [ -x "$PY" ] && ready; then
  echo "[setup_env] environment ready: $VENV"
  exit 0
fi

pin() { grep -E "^$1==" "$REPO/requirements/runtime.txt" | head -1; }
start=$(date +%s)
if [ ! -x "$PY" ]; then
  echo "[setup_env] creating $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
# mmcv's setup.py imports torch and pkg_resources: torch first, setuptools<81, no build isolation.
"$PY" -m pip install --upgrade pip "setuptools<81" wheel
echo "[setup_env] installing $(pin torch) $(pin torchvision)"
"$PY" -m pip install "$(pin torch)" "$(pin torchvision)"
echo "[setup_env] installing $(pin mmcv) (from PIP_FIND_LINKS=${PIP_FIND_LINKS:-<none>} if it has a wheel, else compiling)"
"$PY" -m pip install --no-build-isolation "$(pin mmcv)"
echo "[setup_env] installing the rest of requirements.txt and mmdynbnn (editable)"
"$PY" -m pip install --no-build-isolation -r "$REPO/requirements.txt" -e "$REPO"
"$PY" -c "import mmcv._ext, mmdet, mmpretrain, mmdynbnn; print('[setup_env] import check ok: mmdynbnn', mmdynbnn.__version__)"
echo "$want:$REPO" > "$STAMP"
echo "[setup_env] done in $(( $(date +%s) - start )) s: $VENV"
