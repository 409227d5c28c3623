#!/usr/bin/env bash
# Train the default ensemble on 2 CPU threads, one run after the other (~70 + 36 + 70 min on a
# quiet 2-core machine; run nothing else beside it), then export the bundle.
# Safe to re-run after an interruption: each run resumes from its folder's last.pt and a finished
# run returns at once. Extra arguments go to every run (--set k=v).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # see ml/train.py: no spin-waiting on a shared CPU
$PY -m ml.train --config ml/configs/lite0_color.yaml "$@"
$PY -m ml.train --config ml/configs/lite0_color_448.yaml "$@"   # fine-tunes the 320 px run at 448
$PY -m ml.train --config ml/configs/lite0_gray.yaml "$@"
$PY -m ml.export --runs ml/runs/lite0_color_448 ml/runs/lite0_gray --out ml/weights/default
