#!/usr/bin/env bash
# Idempotent environment setup: creates .venv with the pinned OpenMMLab stack and installs this package (editable).
# A second run only checks a stamp and returns in seconds. See DEVELOPERS.md for why each pin exists.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.amsam-setup-stamp
WANT=$(cat requirements.txt requirements/*.txt tools/setup_env.sh 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "[setup] .venv is up to date"; exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
$PIP install -q --upgrade pip wheel 'setuptools<70'
# torch first: mmcv compiles its ops against the installed torch (torch>=2.10 needs C++20, mmcv 2.1.0 pins C++17).
$PIP install -q -r requirements/torch.txt
# mmcv 2.1.0 has no wheel for this torch: build from the PyPI sdist with ops (~14 min on 2 cores; pip caches the wheel).
if ! $VENV/bin/python -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then
  echo "[setup] building mmcv 2.1.0 with ops from source (first time only, ~15 min on 2 cores)"
  $PIP install -q 'numpy>=2' 'mmengine==0.10.7' ninja psutil
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP install --no-build-isolation -q -r requirements/mmcv.txt
fi
$PIP install -q -r requirements.txt -r requirements/tests.txt
# sam2 is an sdist that imports torch to build: no build isolation, and no CUDA extension (not needed by AM-SAM).
SAM2_BUILD_CUDA=0 $PIP install -q --no-build-isolation -r requirements/sam2.txt
$PIP install -q --no-deps --no-build-isolation -e .
echo "$WANT" > "$STAMP"
echo "[setup] done: $($VENV/bin/python -c 'import torch, mmcv, mmseg, mmdet, mmengine, segment_anything, sam2, onnxruntime, ultralytics; print("torch", torch.__version__, "mmcv", mmcv.__version__, "mmseg", mmseg.__version__, "mmdet", mmdet.__version__, "mmengine", mmengine.__version__, "ultralytics", ultralytics.__version__)')"
