from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path: Path) -> None:
    """Each test stores uploads in its own folder (cookiecutter-django's habit)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def fundus_jpeg() -> bytes:
    """The CC0 fundus photograph from scikit-image, as a camera would send it (uncropped JPEG)."""
    import cv2
    from skimage import data

    rgb = data.retina()
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()
