"""The GPU worker path (``pytest -m cuda``; skipped where torch sees no CUDA device).

Run on a CUDA machine by ``scripts/gpu_check.sh``, with the GPU benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml import CLASSES
from ml.ensemble import Ensemble
from tests.ml.ml_helpers import WEIGHTS_DIR, encode

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


@pytest.fixture(scope="module")
def cuda_ensemble() -> Ensemble:
    return Ensemble.load(WEIGHTS_DIR, device="cuda")


def test_cuda_predict_matches_cpu_and_makes_heatmaps(
    cuda_ensemble: Ensemble, retina: np.ndarray
) -> None:
    assert cuda_ensemble.device.type == "cuda" and cuda_ensemble.runtime == "torch"
    cpu = Ensemble.load(WEIGHTS_DIR, device="cpu", runtime="torch")
    jpeg = encode(retina, "JPEG", quality=92)
    low = dict.fromkeys(CLASSES, 1e-6)  # every eye flagged: the heatmap path must run
    (g,) = cuda_ensemble.predict([jpeg], thresholds=low)
    (c,) = cpu.predict([jpeg], thresholds=low)
    # fp16 autocast on the GPU against fp32 on the CPU.
    assert max(abs(g.probabilities[k] - c.probabilities[k]) for k in CLASSES) < 0.02
    assert g.heatmap_png is not None and g.heatmap_class == c.heatmap_class


def test_cuda_large_batch(cuda_ensemble: Ensemble, retina: np.ndarray) -> None:
    preds = cuda_ensemble.predict([retina] * 256, batch_size=256)
    assert len(preds) == 256
    first = preds[0].probabilities
    assert all(abs(p.probabilities["N"] - first["N"]) < 1e-3 for p in preds)
