"""Eyes kept across a refused submission: the portal carries each accepted photo to the next
attempt as a signed token in a hidden field, so a retake of one eye does not lose the other.

The token names a photo already stored (content-addressed) and is bound to the health worker and
the patient and expires after an hour: a token copied to another patient, another user or replayed
much later is ignored, and the eye must be chosen again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from django.core import signing
from django.core.files.storage import default_storage

from accounts.models import User
from screening.models import Patient
from screening.services import PendingPhoto

SALT = "screening.pending-photo"
MAX_AGE_SECONDS = 3600
EYES = ("left", "right")


def sign(
    kept: Mapping[str, PendingPhoto], *, user: User, patient: Patient
) -> dict[str, dict[str, Any]]:
    """``{eye: {"token": ..., "width": ..., "height": ...}}`` for the form's hidden fields."""
    return {
        eye: {
            "token": signing.dumps(
                {"u": user.pk, "p": patient.pk, "e": eye, "photo": asdict(photo)}, salt=SALT
            ),
            "width": photo.width,
            "height": photo.height,
        }
        for eye, photo in kept.items()
    }


def unsign(data: Mapping[str, Any], *, user: User, patient: Patient) -> dict[str, PendingPhoto]:
    kept: dict[str, PendingPhoto] = {}
    for eye in EYES:
        token = data.get(f"{eye}_kept")
        if not token:
            continue
        try:
            value = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
            photo = PendingPhoto(**value["photo"])
        except (signing.BadSignature, KeyError, TypeError):
            continue
        if (value.get("u"), value.get("p"), value.get("e")) != (user.pk, patient.pk, eye):
            continue
        if default_storage.exists(photo.path):
            kept[eye] = photo
    return kept
