"""The consent texts as data, and every existing patient's consent as its first ConsentEvent.

Version 2025-01 is the sentence the registration form has shown so far (what existing patients
agreed to); 2026-12 is the full text shown from now on. Idempotent; reversing removes only the
events this wrote and the texts no patient points at.
"""

import datetime as dt

from django.db import migrations

TEXTS = (
    (
        "2025-01",
        "환자가 검진 및 진료 목적의 정보 이용에 동의합니다",
        "The patient consents to screening and to the use of their data for their care",
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    ),
    (
        "2026-12",
        "EyeBridge가 양쪽 눈의 안저를 촬영하고, 인공지능과 안과 의료진이 사진을 판독하며, "
        "나의 기록(이름, 생년월일, 전화번호, 건강 정보, 사진과 결과)을 검진 기관이 보관하고 "
        "진료에 필요한 약사 또는 병원과 공유하는 데 동의합니다. 검진 일정 안내 문자를 받을 수 "
        "있습니다. 이 동의는 언제든지 철회할 수 있으며, 철회하면 더 이상 처리하거나 연락하지 "
        "않습니다. 기록의 삭제(가명 처리)를 요청할 수 있고, 사진은 보관 기간이 지나면 삭제됩니다.",
        "I agree that EyeBridge photographs both my retinas, that an AI model and eye-care staff "
        "read the photos, and that my record (name, birth date, phone, health details, photos and "
        "results) is kept by my screening site and shared with the pharmacist or hospital my care "
        "needs. I may receive text reminders about screening. I can withdraw this consent at any "
        "time; from then on nothing more is done with my record and nobody contacts me about it. "
        "I can ask for my record to be erased (pseudonymised), and my photos are deleted after "
        "the retention period.",
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    ),
)


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
