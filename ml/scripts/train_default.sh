#!/usr/bin/env bash
# Train the default ensemble's two branches one after the other, on 2 CPU threads.
# Safe to re-run after an interruption: each branch resumes from its run folder's last.pt
# and a finished branch returns at once. Extra arguments go to both runs (--set k=v).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # see ml/train.py: no spin-waiting on a shared CPU
$PY -m ml.train --config ml/configs/lite0_color.yaml "$@"
$PY -m ml.train --config ml/configs/lite0_gray.yaml "$@"
