"""DICOM UIDs stored once per study, series and instance, instead of derived from the photo's hash.

Existing rows each get a fresh random UID (2.25.<uuid>): the old hash-derived ones were shared by
every screening of the same photo, so none of them is worth keeping. The columns are added
nullable, filled, then made unique and NOT NULL.
"""

import uuid

from django.db import migrations, models

import screening.models

BATCH = 2000


def _fill(apps, schema_editor) -> None:
    Screening = apps.get_model("screening", "Screening")
    ScreeningImage = apps.get_model("screening", "ScreeningImage")
    for model, fields in (
        (Screening, ["study_instance_uid"]),
        (ScreeningImage, ["series_instance_uid", "sop_instance_uid"]),
    ):
        rows = []
        for row in model.objects.only("pk").iterator(chunk_size=BATCH):
            for field in fields:
                setattr(row, field, f"2.25.{uuid.uuid4().int}")
            rows.append(row)
            if len(rows) >= BATCH:
                model.objects.bulk_update(rows, fields)
                rows = []
        if rows:
            model.objects.bulk_update(rows, fields)


class Migration(migrations.Migration):
    dependencies = [
        ("screening", "0002_eyeresult_heatmap_class"),
    ]

    operations = [
        migrations.AddField(
            model_name="screening",
            name="study_instance_uid",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="screeningimage",
            name="series_instance_uid",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="screeningimage",
            name="sop_instance_uid",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(_fill, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="screening",
            name="study_instance_uid",
            field=models.CharField(
                default=screening.models.new_dicom_uid, editable=False, max_length=64, unique=True
            ),
        ),
        migrations.AlterField(
            model_name="screeningimage",
            name="series_instance_uid",
            field=models.CharField(
                default=screening.models.new_dicom_uid, editable=False, max_length=64, unique=True
            ),
        ),
        migrations.AlterField(
            model_name="screeningimage",
            name="sop_instance_uid",
            field=models.CharField(
                default=screening.models.new_dicom_uid, editable=False, max_length=64, unique=True
            ),
        ),
        migrations.AlterField(
            model_name="screeningimage",
            name="sha256",
            field=models.CharField(db_index=True, max_length=64),
        ),
    ]
