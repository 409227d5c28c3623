"""The consent texts as data, and every existing patient's consent as its first ConsentEvent.

Version 2025-01 is the sentence the registration form has shown so far (what existing patients
agreed to); 2026-12 is the full text shown from now on. Idempotent; reversing removes only the
events this wrote and the texts no patient points at.
"""

from django.db import migrations

from screening import consent_texts

TEXTS = consent_texts.TEXTS


def forwards(apps, schema_editor) -> None:
    ConsentText = apps.get_model("screening", "ConsentText")
    ConsentEvent = apps.get_model("screening", "ConsentEvent")
    Patient = apps.get_model("screening", "Patient")
    for version, ko, en, since in TEXTS:
        ConsentText.objects.get_or_create(
            version=version, defaults={"text_ko": ko, "text_en": en, "effective_from": since}
        )
    first = ConsentText.objects.get(version=TEXTS[0][0])
    Patient.objects.filter(consent_text__isnull=True).update(consent_text=first)
    have = set(ConsentEvent.objects.filter(action="given").values_list("patient_id", flat=True))
    ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                patient_id=p.id,
                action="given",
                text_id=p.consent_text_id,
                recorded_by_id=p.consent_recorded_by_id,
                recorded_at=p.consent_recorded_at or p.created_at,
            )
            for p in Patient.objects.exclude(id__in=have).only(
                "id",
                "consent_text_id",
                "consent_recorded_by_id",
                "consent_recorded_at",
                "created_at",
            )
        ],
        batch_size=1000,
    )


def backwards(apps, schema_editor) -> None:
    ConsentText = apps.get_model("screening", "ConsentText")
    ConsentEvent = apps.get_model("screening", "ConsentEvent")
    Patient = apps.get_model("screening", "Patient")
    ConsentEvent.objects.filter(action="given").delete()
    Patient.objects.update(consent_text=None)
    ConsentText.objects.filter(version__in=[t[0] for t in TEXTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("screening", "0008_consent")]

    operations = [migrations.RunPython(forwards, backwards)]
