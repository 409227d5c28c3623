"""Migration 0003: rows that existed before it get their own fresh DICOM UIDs, none shared."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("screening", "0002_eyeresult_heatmap_class")]
AFTER = [("screening", "0003_dicom_uids")]


@pytest.mark.django_db(transaction=True)
def test_existing_screenings_and_images_each_get_their_own_uids():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        User = old.get_model("accounts", "User")
        Site = old.get_model("screening", "Site")
        Patient = old.get_model("screening", "Patient")
        Screening = old.get_model("screening", "Screening")
        ScreeningImage = old.get_model("screening", "ScreeningImage")
        hw = User.objects.create(username="old-hw")
        site = Site.objects.create(name="Old site", region="Seoul")
        ids = []
        for n in range(3):
            patient = Patient.objects.create(
                site=site, name=f"P{n}", birth_date="1960-01-01", sex="F", consent_given=True
            )
            screening = Screening.objects.create(site=site, patient=patient, health_worker=hw)
            ids.append(screening.pk)
            for eye in ("left", "right"):
                # Same photo everywhere: the old hash-derived UIDs were all equal.
                ScreeningImage.objects.create(
                    screening=screening,
                    eye=eye,
                    path="fundus/ab/same.jpg",
                    sha256="ab" * 32,
                    width=10,
                    height=10,
                    gradable=True,
                )

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        studies = list(
            new.get_model("screening", "Screening")
            .objects.filter(pk__in=ids)
            .values_list("study_instance_uid", flat=True)
        )
        images = list(
            new.get_model("screening", "ScreeningImage")
            .objects.filter(screening_id__in=ids)
            .values_list("series_instance_uid", "sop_instance_uid")
        )
        uids = studies + [u for pair in images for u in pair]
        assert len(uids) == 15 and len(set(uids)) == 15
        assert all(u.startswith("2.25.") and len(u) <= 64 for u in uids)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
