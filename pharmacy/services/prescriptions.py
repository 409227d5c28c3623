"""Prescriptions: proposed by the protocol table or requested by a health worker, decided by the
pharmacist (approve with guidance and a one-time code, reject, cancel), and expired when the
pickup window passes.

Locking rule (see the package docstring): the prescription row first."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role, User
from config.errors import Conflict, Forbidden, InvalidInput, Unprocessable
from pharmacy import codes
from pharmacy.models import (
    Dispense,
    DispenseCode,
    Medication,
    MedicationProtocol,
    Prescription,
    PrescriptionEvent,
    PrescriptionItem,
)
from pharmacy.selectors import (
    pharmacy_for_site,
    prescription_get_for_user,
    prescription_warnings,
    screening_get_for_health_worker,
)
from pharmacy.services._common import _event, _require_pharmacist
from screening.models import Screening, Triage
from screening.result_of_record import screening_of_record

logger = logging.getLogger("eyebridge.pharmacy")

# Screenings whose outcome may be treated with OTC medicine. Referable, urgent and ungradable
# screenings go to a doctor instead, whatever the protocol table says.
PROPOSABLE_TRIAGE = frozenset({Triage.NORMAL, Triage.MEDICATION})
COUNSELLING_FIELDS = ("dose", "frequency", "duration", "warnings")
COUNSELLING_LANGUAGES = ("ko", "en")
LIVE_DISPENSE = (Dispense.Status.RESERVED, Dispense.Status.COMPLETED)


def _lock_prescription_for_user(*, user: User, prescription_id: int) -> Prescription:
    # Scope check first (404 outside the user's organisation), then the row lock.
    prescription_get_for_user(user=user, prescription_id=prescription_id)
    return Prescription.objects.select_for_update().get(pk=prescription_id)


def prescription_propose_for_screening(*, screening_id: int) -> Prescription | None:
    """Propose medication for a completed screening by the MedicationProtocol table.

    Reads the result of record (screening.result_of_record): the AI's result when the screening
    has just finished, a grader's final read when one changed it to normal or medication (then
    also for a screening the AI found ungradable). Idempotent: at most one rule-proposed
    prescription per screening (a partial unique constraint), so a redelivered task returns the
    existing one. Proposes nothing for referable, urgent or ungradable results, when no protocol
    row matches, or when no pharmacy serves the site."""
    screening = screening_of_record(screening_id=screening_id)
    finished = (Screening.Status.COMPLETED, Screening.Status.UNGRADABLE)
    if screening is None or screening.status not in finished:
        return None
    if screening.triage not in PROPOSABLE_TRIAGE:
        return None
    existing = Prescription.objects.filter(
        screening=screening, source=Prescription.Source.RULE
    ).first()
    if existing is not None:
        return existing
    symptoms = set(screening.symptoms or [])
    chosen: dict[int, int] = {}
    for rule in MedicationProtocol.objects.filter(
        active=True, medication__active=True
    ).select_related("medication"):
        if not isinstance(rule.triage, list) or screening.triage not in rule.triage:
            continue
        if rule.symptom and rule.symptom not in symptoms:
            continue
        # The highest-priority rule for a medication wins; a quantity never exceeds the maximum.
        chosen.setdefault(rule.medication_id, min(rule.quantity, rule.medication.max_quantity))
    if not chosen:
        return None
    pharmacy = pharmacy_for_site(site=screening.site)
    if pharmacy is None:
        logger.warning(
            "no pharmacy serves site %s; screening %s gets no proposal",
            screening.site_id,
            screening.pk,
        )
        return None
    try:
        with transaction.atomic():
            prescription = Prescription.objects.create(
                pharmacy=pharmacy,
                patient=screening.patient,
                screening=screening,
                source=Prescription.Source.RULE,
            )
            PrescriptionItem.objects.bulk_create(
                PrescriptionItem(prescription=prescription, medication_id=mid, quantity=qty)
                for mid, qty in chosen.items()
            )
            _event(prescription, from_status="", note=PrescriptionEvent.SystemNote.PROPOSED)
    except IntegrityError:
        # Two deliveries of the same task raced; the other one's prescription stands.
        return Prescription.objects.get(screening=screening, source=Prescription.Source.RULE)
    return prescription


def prescription_request(
    *, user: User, screening_id: int, medication_id: int, quantity: int, note: str = ""
) -> Prescription:
    """A health worker asks the pharmacist for a formulary item for a patient of their site."""
    if user.role != Role.HEALTH_WORKER:
        raise Forbidden(_("Only a health worker may request medication."), code="not_health_worker")
    screening = screening_get_for_health_worker(user=user, screening_id=screening_id)
    medication = Medication.objects.filter(pk=medication_id, active=True).first()
    if medication is None:
        raise InvalidInput(_("Unknown medication."), code="unknown_medication", field="medication")
    if not 1 <= quantity <= medication.max_quantity:
        raise InvalidInput(
            _("Quantity must be between 1 and %(max)d.") % {"max": medication.max_quantity},
            code="invalid_quantity",
            field="quantity",
        )
    pharmacy = pharmacy_for_site(site=screening.site)
    if pharmacy is None:
        raise Unprocessable(_("No pharmacy serves this site yet."), code="no_pharmacy")
    with transaction.atomic():
        prescription = Prescription.objects.create(
            pharmacy=pharmacy,
            patient=screening.patient,
            screening=screening,
            source=Prescription.Source.USER,
            requested_by=user,
            request_note=note[:2000],
        )
        PrescriptionItem.objects.create(
            prescription=prescription, medication=medication, quantity=quantity
        )
        _event(
            prescription, from_status="", actor=user, note=PrescriptionEvent.SystemNote.REQUESTED
        )
    return prescription


def counselling_clean(counselling: Any) -> dict[str, dict[str, str]]:
    """Validate the medication guidance: dose, frequency, duration and warnings, in Korean and
    English, each non-empty text."""
    if not isinstance(counselling, dict) or set(counselling) != set(COUNSELLING_LANGUAGES):
        raise InvalidInput(
            _("Guidance is required in Korean and English."),
            code="invalid_counselling",
            field="counselling",
        )
    cleaned: dict[str, dict[str, str]] = {}
    for language in COUNSELLING_LANGUAGES:
        block = counselling[language]
        if not isinstance(block, dict) or set(block) != set(COUNSELLING_FIELDS):
            raise InvalidInput(
                _("Guidance needs dose, frequency, duration and warnings."),
                code="invalid_counselling",
                field="counselling",
            )
        cleaned[language] = {}
        for name in COUNSELLING_FIELDS:
            value = block[name]
            if not isinstance(value, str) or not value.strip() or len(value) > 1000:
                raise InvalidInput(
                    _("Every guidance field must be filled in (at most 1000 characters)."),
                    code="invalid_counselling",
                    field=f"counselling.{language}.{name}",
                )
            cleaned[language][name] = value.strip()
    return cleaned


def _issue_code(prescription: Prescription, *, expires_at: dt.datetime) -> DispenseCode:
    for _attempt in range(5):
        salt = codes.new_salt()
        try:
            # A savepoint: a (one in 10^12) collision of code hashes retries with a new salt.
            with transaction.atomic():
                return DispenseCode.objects.create(
                    prescription=prescription,
                    salt=salt,
                    code_hash=codes.code_hash(codes.code_from_salt(salt)),
                    expires_at=expires_at,
                )
        except IntegrityError:
            continue
    raise Conflict(_("Could not issue a dispense code; try again."), code="code_collision")


def prescription_approve(
    *,
    user: User,
    prescription_id: int,
    counselling: Any,
    note: str = "",
    acknowledge_warnings: bool = False,
) -> Prescription:
    """Approve a pending prescription with the pharmacist's guidance, issue its one-time code and
    text it to the patient after commit. Locks the prescription: two pharmacists deciding at once
    cannot both act."""
    _require_pharmacist(user)
    cleaned = counselling_clean(counselling)
    with transaction.atomic():
        prescription = _lock_prescription_for_user(user=user, prescription_id=prescription_id)
        if prescription.status != Prescription.Status.PENDING_APPROVAL:
            raise Conflict(_("This prescription has already been decided."), code="not_pending")
        full = (
            Prescription.objects.select_related("patient", "screening")
            .prefetch_related("items__medication__category")
            .get(pk=prescription.pk)
        )
        warnings = prescription_warnings(prescription=full)
        if warnings and not acknowledge_warnings:
            raise Unprocessable(
                _("Review the warnings and confirm that you have considered them."),
                code="warnings_not_acknowledged",
                details={"warnings": warnings},
            )
        now = timezone.now()
        prescription.status = Prescription.Status.APPROVED
        prescription.decided_by = user
        prescription.decided_at = now
        prescription.decision_note = note[:2000]
        prescription.counselling = cleaned
        prescription.pickup_expires_at = now + dt.timedelta(
            hours=settings.PHARMACY_PICKUP_WINDOW_HOURS
        )
        prescription.save()
        _issue_code(prescription, expires_at=prescription.pickup_expires_at)
        _event(
            prescription,
            from_status=Prescription.Status.PENDING_APPROVAL,
            actor=user,
            note=note[:2000],
        )

        from pharmacy.tasks import prescription_send_code as task

        # robust: a broker outage must not turn a committed approval into an error page; the code
        # is still shown to the health worker, who can tell the patient.
        transaction.on_commit(lambda: task.delay(prescription.pk), robust=True)
    return prescription


def prescription_reject(*, user: User, prescription_id: int, reason: str) -> Prescription:
    _require_pharmacist(user)
    if not reason or not reason.strip():
        raise InvalidInput(_("A reason is required."), code="reason_required", field="reason")
    with transaction.atomic():
        prescription = _lock_prescription_for_user(user=user, prescription_id=prescription_id)
        if prescription.status != Prescription.Status.PENDING_APPROVAL:
            raise Conflict(_("This prescription has already been decided."), code="not_pending")
        prescription.status = Prescription.Status.REJECTED
        prescription.decided_by = user
        prescription.decided_at = timezone.now()
        prescription.decision_note = reason.strip()[:2000]
        prescription.save()
        _event(
            prescription,
            from_status=Prescription.Status.PENDING_APPROVAL,
            actor=user,
            note=reason.strip(),
        )
    return prescription


def prescription_cancel(*, user: User, prescription_id: int, reason: str) -> Prescription:
    """Cancel a pending or approved prescription (the pharmacist of its pharmacy, or a health worker
    of the patient's site). The dispense code stops working at once; a release already reserved at
    a kiosk must finish or fail first."""
    if user.role not in {Role.PHARMACIST, Role.HEALTH_WORKER}:
        raise Forbidden(_("You may not cancel prescriptions."), code="forbidden")
    if not reason or not reason.strip():
        raise InvalidInput(_("A reason is required."), code="reason_required", field="reason")
    with transaction.atomic():
        prescription = _lock_prescription_for_user(user=user, prescription_id=prescription_id)
        before = prescription.status
        if before not in {Prescription.Status.PENDING_APPROVAL, Prescription.Status.APPROVED}:
            raise Conflict(
                _("Only a pending or approved prescription can be cancelled."),
                code="not_cancellable",
            )
        if prescription.dispenses.filter(status=Dispense.Status.RESERVED).exists():
            raise Conflict(
                _("A kiosk is releasing this prescription right now."), code="dispense_in_progress"
            )
        prescription.status = Prescription.Status.CANCELLED
        prescription.save(update_fields=["status", "updated_at"])
        DispenseCode.objects.filter(prescription=prescription, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        _event(prescription, from_status=before, actor=user, note=reason.strip()[:2000])
    return prescription


def prescription_send_code(*, prescription_id: int) -> None:
    """Text the patient their pickup code. Safe to run twice: the message's dedupe key is the code."""
    prescription = (
        Prescription.objects.select_related("patient", "pharmacy", "dispense_code")
        .filter(pk=prescription_id, status=Prescription.Status.APPROVED)
        .first()
    )
    code_row = getattr(prescription, "dispense_code", None) if prescription else None
    if prescription is None or code_row is None or code_row.revoked_at is not None:
        return
    from accounts.messaging import message_send

    code = codes.format_code(codes.code_from_salt(code_row.salt))
    until = timezone.localtime(code_row.expires_at).strftime("%Y-%m-%d %H:%M")
    body = (
        f"[EyeBridge] 약사가 약을 승인했습니다. {prescription.pharmacy.name} 무인 판매기에서 "
        f"코드 {code} 를 입력하세요 ({until}까지). "
        f"Your medicine is approved: enter code {code} at the {prescription.pharmacy.name_en or prescription.pharmacy.name} kiosk by {until}."
    )
    message_send(
        to=prescription.patient.phone,
        body=body,
        topic="dispense_code",
        dedupe_key=f"pharmacy:code:{code_row.pk}",
    )


def prescriptions_expire(*, now: dt.datetime | None = None) -> int:
    """Approved prescriptions whose pickup window has passed become expired (unless a kiosk is
    releasing them right now). A conditional UPDATE, so a concurrent dispense and this sweep
    cannot both win."""
    now = now or timezone.now()
    live = Dispense.objects.filter(prescription=OuterRef("pk"), status__in=LIVE_DISPENSE)
    with transaction.atomic():
        ids = list(
            Prescription.objects.select_for_update(skip_locked=True)
            .filter(status=Prescription.Status.APPROVED, pickup_expires_at__lt=now)
            .exclude(Exists(live))
            .values_list("pk", flat=True)
        )
        for prescription in Prescription.objects.filter(pk__in=ids):
            prescription.status = Prescription.Status.EXPIRED
            prescription.save(update_fields=["status", "updated_at"])
            _event(
                prescription,
                from_status=Prescription.Status.APPROVED,
                note=PrescriptionEvent.SystemNote.PICKUP_EXPIRED,
            )
    return len(ids)
