"""The model, loaded once per worker process (loading costs seconds; a screening costs far less)."""

from __future__ import annotations

import threading

from django.conf import settings

_lock = threading.Lock()
_ensemble = None


def get_ensemble():
    global _ensemble
    if _ensemble is None:
        with _lock:
            if _ensemble is None:
                from ml.ensemble import Ensemble

                _ensemble = Ensemble.load(
                    settings.ML_WEIGHTS_DIR, device=settings.ML_DEVICE, threads=settings.ML_THREADS
                )
    return _ensemble


def model_thresholds() -> dict[str, float]:
    """The model card's per-class thresholds, read without loading the networks."""
    import json
    from pathlib import Path

    path = Path(settings.ML_WEIGHTS_DIR) / "thresholds.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {
        k: float(v) for k, v in data.get("thresholds", data).items() if isinstance(v, int | float)
    }
