"""Fixtures for the ml package's tests: plain pytest, no Django, no fakes of the model."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ml.ml_helpers import WEIGHTS_DIR, synthetic_fundus


@pytest.fixture(scope="session")
def fundus() -> np.ndarray:
    return synthetic_fundus()


@pytest.fixture(scope="session")
def retina() -> np.ndarray:
    import skimage.data

    return skimage.data.retina()


@pytest.fixture(scope="session")
def ensemble():  # type: ignore[no-untyped-def]
    from ml.ensemble import Ensemble

    if not (WEIGHTS_DIR / "config.yaml").is_file():
        pytest.fail(f"shipped weights missing at {WEIGHTS_DIR}: run python -m ml.export")
    return Ensemble.load(WEIGHTS_DIR, threads=2)
