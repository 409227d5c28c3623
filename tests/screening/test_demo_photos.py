"""The demo's live screenings borrow one CC0 fundus picture, but each eye gets a picture of its
own, so the demo's result pages show results, not a "same photo picked twice" warning on every
one (found walking the health worker's first hour on a fresh clone)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from screening.duplicate_photos import duplicate_photo_warnings
from screening.management.commands.seed_demo_history import HISTORY_MODEL_VERSION
from screening.models import Screening, ScreeningImage

pytestmark = pytest.mark.django_db


def test_demo_screenings_raise_no_duplicate_photo_warning():
    call_command("seed_demo", stdout=io.StringIO())
    live = Screening.objects.exclude(model_version=HISTORY_MODEL_VERSION)
    assert live.count() >= 3
    hashes = list(
        ScreeningImage.objects.filter(screening__in=live).values_list("sha256", flat=True)
    )
    assert len(hashes) == 2 * live.count() and len(set(hashes)) == len(hashes)
    for screening in live:
        assert duplicate_photo_warnings(screening=screening) == [], screening.pk
