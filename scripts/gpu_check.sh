#!/usr/bin/env bash
# On a CUDA machine (the device tool's H200): the CUDA tests, then the GPU benchmark, within a
# few minutes. Uses the machine's own python3 and packages (nothing can be installed there);
# results land in $OUT (or ./gpu_out). Usage: scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
$PY -c "import torch, timm; print(torch.__version__, timm.__version__, torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
# The ml tests need no Django: skip the project's pytest config and the root conftest.
PYTHONPATH=. $PY -m pytest -c /dev/null --confcutdir=tests/ml -p no:cacheprovider -q -m cuda \
  tests/ml/test_ml_cuda.py 2>&1 | tee "$OUT/cuda_tests.txt"
PYTHONPATH=. $PY -m ml.bench --device cuda --n 4096 --batch 256 --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.txt"
