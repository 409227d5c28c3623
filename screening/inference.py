"""The model, loaded once per worker process (loading costs seconds; a screening costs far less)."""

from __future__ import annotations

import threading

from django.conf import settings

from ml.decision import Decision

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


def model_decision() -> Decision:
    """The bundle's refer decision (``thresholds.json``), read without loading the networks;
    every class at 0.5 when the bundle is missing."""
    import json
    from pathlib import Path

    path = Path(settings.ML_WEIGHTS_DIR) / "thresholds.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        data = {}
    return Decision.from_json(data)


def model_thresholds() -> dict[str, float]:
    """The bundle's per-class refer thresholds (on the finding-score scale, ml.decision)."""
    return dict(model_decision().thresholds)
