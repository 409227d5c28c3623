"""Tests run on real PostgreSQL and Redis (the engines we deploy on)."""

import os
from pathlib import Path

import dj_database_url

from .base import *  # noqa: F403
from .base import STORAGE_BACKEND, VAR_DIR

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/eyebridge")
    )
}
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 900))
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(VAR_DIR / "test-media")))
STATIC_ROOT = VAR_DIR / "test-static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
SECRET_KEY = "test-only-key"  # noqa: S105
STORAGES = {
    "default": {"BACKEND": STORAGE_BACKEND},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
