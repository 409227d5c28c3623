"""Consent and the patient's rights (issue 16.3): versioned consent, withdrawal, erasure,
retention. Korea's PIPA and the GDPR give a patient all four.

* **Versioned consent.** Registration records which ``ConsentText`` (both languages) the patient
  agreed to, who recorded it and when, as the first ``ConsentEvent``.
* **Withdrawal** (the health worker of the patient's site, or an administrator) stops all further
  processing and contact: the patient's screenings still waiting for the model are stopped
  (``Screening.Status.WITHDRAWN``; inference never claims a withdrawn patient's screening, and a
  result that arrives after the withdrawal is not stored), no new screening can be submitted, and
  no SMS goes out (recall reminders and referral texts ask :func:`patient_may_be_contacted`).
  Open referrals and prescriptions are left to the people handling them: a clinical handover is
  closed by a person, not silently (docs/decisions.md).
* **Erasure** (an administrator: the data controller's decision, and it cannot be undone)
  pseudonymises the record: photos and heatmaps deleted from storage, identifying fields cleared
  (name, phone, address, home coordinates, notes; the birth date kept as 1 January of its year so
  age-band aggregates hold). The patient code, sex, region, risk factors, results and the audit
  trail stay, so the dashboard's counts and the hash chain are unchanged.
* **Retention**: :func:`images_purge_older_than` (``manage.py purge_images``, daily on beat)
  deletes the photo files of screenings older than ``IMAGE_RETENTION_DAYS``.

Each step writes an audit event naming the patient by id and the counts, never the erased values.
Files are deleted after the transaction commits: a rolled-back erasure leaves every photo in place.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from config.errors import Conflict, Forbidden, InvalidInput
from screening import consent_texts, selectors, uploads
from screening.models import (
    ConsentEvent,
    ConsentText,
    EyeResult,
    Patient,
    Screening,
    ScreeningImage,
)

logger = logging.getLogger("eyebridge.screening")

# Screenings the model has not answered yet: the ones a withdrawal stops.
PENDING = (Screening.Status.DRAFT, Screening.Status.QUEUED, Screening.Status.PROCESSING)


def consent_text_current(*, now: dt.datetime | None = None) -> ConsentText | None:
    """The version a new registration agrees to: the latest already in use. A database without
    the shipped texts (flushed) gets them back first, so registration never stops for it."""
    in_use = ConsentText.objects.filter(effective_from__lte=now or timezone.now()).order_by(
        "-effective_from", "-id"
    )
    current = in_use.first()
    if current is None:
        for version, ko, en, since in consent_texts.TEXTS:
            ConsentText.objects.get_or_create(
                version=version, defaults={"text_ko": ko, "text_en": en, "effective_from": since}
            )
        current = in_use.first()  # a queryset is evaluated again on each first()
    return current


def patient_may_be_contacted(patient: Patient) -> bool:
    """False once the patient withdrew consent (or was erased): no SMS, no call list."""
    return patient.consent_withdrawn_at is None and patient.erased_at is None


def patient_require_consent(patient: Patient) -> None:
    """Refuse further processing of a patient who withdrew consent."""
    if patient.consent_withdrawn_at is not None:
        raise Conflict(
            _("This patient withdrew consent: nothing more can be recorded for them."),
            code="consent_withdrawn",
        )


def patient_consent_record(*, user: User, patient: Patient) -> ConsentEvent:
    """The consent given at registration (called inside ``patient_create``'s transaction)."""
    text = consent_text_current()
    if text is None:
        raise InvalidInput(_("No consent text is in use yet."), code="no_consent_text")
    Patient.objects.filter(pk=patient.pk).update(consent_text=text)
    patient.consent_text = text
    return ConsentEvent.objects.create(
        patient=patient, action=ConsentEvent.Action.GIVEN, text=text, recorded_by=user
    )


def _locked_patient(*, user: User, patient_id: int) -> Patient:
    patient = selectors.patient_get(user=user, patient_id=patient_id)
    return Patient.objects.select_for_update().get(pk=patient.pk)


def _withdraw(*, user: User, patient: Patient, now: dt.datetime) -> int:
    """Under the patient's lock: mark the withdrawal and stop the pending screenings."""
    patient.consent_withdrawn_at = now
    patient.save(update_fields=["consent_withdrawn_at"])
    ConsentEvent.objects.create(
        patient=patient, action=ConsentEvent.Action.WITHDRAWN, recorded_by=user, recorded_at=now
    )
    # A conditional UPDATE: a screening the worker finishes at this moment is either stored
    # first (then it stays completed) or finds itself withdrawn and stores nothing.
    stopped = Screening.objects.filter(patient=patient, status__in=PENDING).update(
        status=Screening.Status.WITHDRAWN, error="consent withdrawn", completed_at=now
    )
    from screening.recall import patient_recall_refresh

    patient_recall_refresh(patient_id=patient.pk)
    return stopped


def patient_consent_withdraw(*, user: User, patient_id: int, request: Any = None) -> Patient:
    """The patient withdraws consent. Conflict if they already did; nothing is written then."""
    from accounts.audit import audit_record

    with transaction.atomic():
        patient = _locked_patient(user=user, patient_id=patient_id)
        if patient.consent_withdrawn_at is not None:
            raise Conflict(_("This patient already withdrew consent."), code="already_withdrawn")
        now = timezone.now()
        stopped = _withdraw(user=user, patient=patient, now=now)
        audit_record(
            action="update",
            user=user,
            object_type="patient",
            object_ids=[patient.pk],
            request=request,
            url_name="screening.consent.patient_consent_withdraw",
            extra={
                "step": "consent_withdraw",
                "patient_ids": [str(patient.pk)],
                "screenings_stopped": stopped,
            },
        )
    return patient


def _remove_files(where: Q, *, now: dt.datetime) -> dict[str, int]:
    """Under the caller's transaction: clear the stored photo and heatmap paths of the screenings
    ``where`` selects (by ``screening__...`` lookups), mark the photos removed, and delete the
    files once the transaction commits. Returns how many photos and heatmaps, for the audit."""
    photos = ScreeningImage.objects.filter(where).exclude(path="")
    heatmaps = EyeResult.objects.filter(where).exclude(heatmap_path="")
    photo_paths = list(photos.values_list("path", flat=True))
    heatmap_paths = list(heatmaps.values_list("heatmap_path", flat=True))
    photos.update(path="", removed_at=now)
    heatmaps.update(heatmap_path="")
    _delete_files_later(photo_paths + heatmap_paths)
    return {"photos": len(photo_paths), "heatmaps": len(heatmap_paths)}


def _delete_files_later(paths: list[str]) -> None:
    """Delete stored files once the transaction commits. A file that another screening still
    uses (the same photo uploaded twice: content-addressed names) is kept."""

    def delete() -> None:
        in_use = set(
            ScreeningImage.objects.filter(path__in=paths).values_list("path", flat=True)
        ) | set(
            EyeResult.objects.filter(heatmap_path__in=paths).values_list("heatmap_path", flat=True)
        )
        for path in sorted(set(paths) - in_use):
            try:
                uploads.delete_stored([path])
            except (OSError, InvalidInput):
                logger.exception("could not delete stored file %s", path)

    transaction.on_commit(delete)


def erase_require_admin(user: User) -> None:
    """Erasure cannot be undone: it is the data controller's step, an administrator's."""
    if not user.is_platform_admin:
        raise Forbidden(_("Only an administrator can erase a patient's record."))


def patient_erase(*, user: User, patient_id: int, confirm: str, request: Any = None) -> Patient:
    """Pseudonymise a patient on their request. ``confirm`` must repeat the patient code (the
    step cannot be undone). Withdraws consent first where the patient had not yet."""
    from accounts.audit import audit_record

    erase_require_admin(user)
    with transaction.atomic():
        patient = _locked_patient(user=user, patient_id=patient_id)
        if patient.erased_at is not None:
            raise Conflict(_("This patient's record was already erased."), code="already_erased")
        if (confirm or "").strip().upper() != patient.pseudonym.upper():
            raise InvalidInput(
                _("Type the patient code %(code)s to confirm the erasure.")
                % {"code": patient.pseudonym},
                code="confirm_mismatch",
                field="confirm",
            )
        now = timezone.now()
        stopped = 0
        if patient.consent_withdrawn_at is None:
            stopped = _withdraw(user=user, patient=patient, now=now)
        removed = _remove_files(Q(screening__patient=patient), now=now)
        patient.name = ""
        patient.phone = ""
        patient.address = ""
        patient.home_latitude = None
        patient.home_longitude = None
        patient.allergies = ""
        patient.medical_notes = ""
        patient.birth_date = dt.date(patient.birth_date.year, 1, 1)
        patient.erased_at = now
        patient.save()
        ConsentEvent.objects.create(
            patient=patient, action=ConsentEvent.Action.ERASED, recorded_by=user, recorded_at=now
        )
        audit_record(
            action="delete",
            user=user,
            object_type="patient",
            object_ids=[patient.pk],
            request=request,
            url_name="screening.consent.patient_erase",
            extra={
                "step": "erase",
                "patient_ids": [str(patient.pk)],
                "photos_deleted": removed["photos"],
                "heatmaps_deleted": removed["heatmaps"],
                "screenings_stopped": stopped,
            },
        )
    return patient


def images_purge_older_than(*, days: int, now: dt.datetime | None = None) -> dict[str, int]:
    """Retention: delete the photo and heatmap files of screenings created more than ``days``
    ago; the rows, results and decisions stay (``removed_at`` says when). Idempotent."""
    from accounts.audit import audit_record

    if days < 1:
        raise InvalidInput(_("The retention period must be at least one day."), code="bad_days")
    now = now or timezone.now()
    old = Q(screening__created_at__lt=now - dt.timedelta(days=days))
    with transaction.atomic():
        counts = _remove_files(old, now=now)
        if counts["photos"] or counts["heatmaps"]:
            audit_record(
                action="delete",
                object_type="screening_image",
                url_name="screening.consent.images_purge_older_than",
                actor_username="retention",
                actor_type="system",
                extra={
                    "step": "retention_purge",
                    "days": days,
                    "photos_deleted": counts["photos"],
                    "heatmaps_deleted": counts["heatmaps"],
                },
            )
    return counts
