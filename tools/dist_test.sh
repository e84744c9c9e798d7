#!/usr/bin/env bash
# Multi-GPU testing with torchrun: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [--cfg-options ...]
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
PORT=${PORT:-29500}
PY=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
[ -x "$PY" ] || PY=python

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PY" -m torch.distributed.run --nproc_per_node=$GPUS --master_port=$PORT \
    "$(dirname "$0")/test.py" $CONFIG $CHECKPOINT --launcher pytorch ${@:4}
