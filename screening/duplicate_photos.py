"""Warnings about a photo that was probably picked by mistake: both eyes are the same picture, or
the picture is already in an earlier screening at the same site (of this or another patient).

A warning, not a refusal: a health worker who picked one file twice, or an old file, is told at
once (in the upload's API answer and on the result page) and can retake; a genuine case (one eye
photographed, the same file sent for both by a camera that cannot do otherwise) is not blocked.

The comparison is on the stored photo's SHA-256. Stored photos are re-encoded from their pixels
(screening.uploads), so the same picture matches even when it arrives as a different file (resaved,
with or without EXIF). Derived from the stored rows, so the result page shows the same warnings
on every visit, and an earlier screening never warns about a later one.
"""

from __future__ import annotations

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from screening.models import Eye, Screening, ScreeningImage

SAME_PHOTO_BOTH_EYES = "same_photo_both_eyes"
PHOTO_USED_BEFORE = "photo_used_before"


def duplicate_photo_warnings(*, screening: Screening) -> list[dict]:
    """``[{code, message, eye?, screening?, patient?}]`` for the screening's photos; empty when none
    is suspicious. One query beyond the screening's (prefetched) images."""
    images = list(screening.images.all())
    warnings: list[dict] = []
    eyes_by_hash: dict[str, list[str]] = {}
    for image in images:
        eyes_by_hash.setdefault(image.sha256, []).append(image.eye)
    if any(len(eyes) > 1 for eyes in eyes_by_hash.values()):
        warnings.append(
            {
                "code": SAME_PHOTO_BOTH_EYES,
                "message": _(
                    "The left and right eye photos are the same picture. Check that you chose "
                    "a different photo for each eye, and retake if needed."
                ),
            }
        )
    if not images:
        return warnings
    # The most recent earlier use of each photo at this site; "earlier" by id, which follows
    # creation order and never ties.
    earlier: dict[str, ScreeningImage] = {}
    for earlier_image in (
        ScreeningImage.objects.filter(
            sha256__in=eyes_by_hash,
            screening__site_id=screening.site_id,
            screening_id__lt=screening.pk,
        )
        .select_related("screening__patient")
        .order_by("-screening_id")
    ):
        earlier.setdefault(earlier_image.sha256, earlier_image)
    for image in images:
        match = earlier.get(image.sha256)
        if match is None:
            continue
        before = match.screening
        same_patient = before.patient_id == screening.patient_id
        values = {
            "eye": Eye(image.eye).label,
            "date": formats.date_format(timezone.localtime(before.created_at), "SHORT_DATE_FORMAT"),
            "patient": before.patient.pseudonym,
        }
        message = (
            _(
                "%(eye)s: this photo is the same picture as in this patient's earlier screening "
                "of %(date)s. Take a new photo for today's screening."
            )
            if same_patient
            else _(
                "%(eye)s: this photo is the same picture as in an earlier screening of another "
                "patient (%(patient)s, %(date)s). Check that you chose this patient's photo."
            )
        )
        warnings.append(
            {
                "code": PHOTO_USED_BEFORE,
                "message": message % values,
                "eye": image.eye,
                "screening": before.pk,
                "patient": before.patient.pseudonym,
            }
        )
    return warnings
