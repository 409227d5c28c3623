"""Writes of the pharmacy app: proposing, approving and dispensing medicine, and the stock ledger.

Locking rule, the same everywhere, so that two transactions never wait on each other in a cycle:
prescription row -> dispense row -> stock lots (in primary-key order).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AdminAlert, Role, User
from config.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unprocessable,
)
from pharmacy import codes
from pharmacy.models import (
    Dispense,
    DispenseCode,
    DispenseLine,
    IdempotencyRecord,
    Kiosk,
    KioskCallRequest,
    Medication,
    MedicationProtocol,
    Pharmacy,
    PharmacyAlert,
    Prescription,
    PrescriptionEvent,
    PrescriptionItem,
    StockLot,
    StockMovement,
)
from pharmacy.selectors import (
    pharmacy_for_site,
    pharmacy_for_user,
    prescription_get_for_user,
    prescription_warnings,
    screening_get_for_health_worker,
)
from screening.models import Screening, Triage

logger = logging.getLogger("eyebridge.pharmacy")

# Screenings whose outcome may be treated with OTC medicine. Referable, urgent and ungradable
# screenings go to a doctor instead, whatever the protocol table says.
PROPOSABLE_TRIAGE = frozenset({Triage.NORMAL, Triage.MEDICATION})
COUNSELLING_FIELDS = ("dose", "frequency", "duration", "warnings")
COUNSELLING_LANGUAGES = ("ko", "en")
LIVE_DISPENSE = (Dispense.Status.RESERVED, Dispense.Status.COMPLETED)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _event(
    prescription: Prescription,
    *,
    from_status: str,
    actor: User | None = None,
    kiosk: Kiosk | None = None,
    note: str = "",
) -> None:
    PrescriptionEvent.objects.create(
        prescription=prescription,
        from_status=from_status,
        to_status=prescription.status,
        actor=actor,
        kiosk=kiosk,
        note=note,
    )


def _require_pharmacist(user: User) -> Pharmacy:
    pharmacy = pharmacy_for_user(user=user)
    if pharmacy is None:
        raise Forbidden(_("Only a pharmacist of a pharmacy may do this."), code="not_pharmacist")
    return pharmacy


def _lock_prescription_for_user(*, user: User, prescription_id: int) -> Prescription:
    # Scope check first (404 outside the user's organisation), then the row lock.
    prescription_get_for_user(user=user, prescription_id=prescription_id)
    return Prescription.objects.select_for_update().get(pk=prescription_id)


# --- proposing and requesting -------------------------------------------------------------------


def prescription_propose_for_screening(*, screening_id: int) -> Prescription | None:
    """Propose medication for a completed screening by the MedicationProtocol table.

    Idempotent: at most one rule-proposed prescription per screening (a partial unique constraint),
    so a redelivered task returns the existing one. Proposes nothing for referable, urgent or
    ungradable screenings, when no protocol row matches, or when no pharmacy serves the site."""
    screening = Screening.objects.select_related("patient", "site").filter(pk=screening_id).first()
    if screening is None or screening.status != Screening.Status.COMPLETED:
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
            _event(prescription, from_status="", note="proposed by protocol")
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
        _event(prescription, from_status="", actor=user, note="requested by health worker")
    return prescription


# --- the pharmacist's decision ------------------------------------------------------------------


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
            hours=_setting("PHARMACY_PICKUP_WINDOW_HOURS", 72)
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
                prescription, from_status=Prescription.Status.APPROVED, note="pickup window passed"
            )
    return len(ids)


# --- kiosks ---------------------------------------------------------------------------------------
# Provisioning (register, rotate, retire) is done by a platform admin in the Django admin or with
# `manage.py kiosk`; each change and its audit entry commit together (accounts.audit).

KIOSK_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")  # no ':' or spaces: `Kiosk <id>:<secret>`


def kiosk_new_id() -> str:
    return f"K-{codes.new_salt()[:8].upper()}"


def kiosk_create(
    *,
    pharmacy: Pharmacy,
    name: str,
    kiosk_id: str | None = None,
    location: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
) -> tuple[Kiosk, str]:
    """Create a kiosk and return it with its secret (shown once; only its HMAC is stored).

    Writes no audit entry: the demo seed, benchmarks and tests use it. A person registering a
    kiosk goes through ``kiosk_register``."""
    kiosk_id = kiosk_id or kiosk_new_id()
    if not KIOSK_ID_RE.match(kiosk_id):
        raise InvalidInput(
            _("A kiosk id is 1-32 letters, digits, dots, dashes or underscores."),
            code="invalid_kiosk_id",
            field="kiosk_id",
        )
    secret = codes.new_kiosk_secret()
    kiosk = Kiosk.objects.create(
        pharmacy=pharmacy,
        name=name,
        kiosk_id=kiosk_id,
        location=location,
        latitude=latitude,
        longitude=longitude,
        secret_hash=codes.kiosk_secret_hash(secret),
    )
    return kiosk, secret


def _kiosk_audit(
    kiosk: Kiosk,
    *,
    action: str,
    change: str,
    actor: User | None,
    request: Any,
    via: str,
) -> None:
    """One audit entry for a provisioning change (never the secret). Without a signed-in user the
    change came from a shell (`manage.py kiosk`): the entry names the operating-system account."""
    from accounts.audit import audit_record

    who: dict[str, str] = {}
    if actor is None:
        who = {"actor_type": "system", "actor_username": f"shell:{getpass.getuser()}"}
    audit_record(
        action=action,
        user=actor,
        object_type="kiosk",
        object_ids=[kiosk.pk],
        request=request,
        url_name=via,
        extra={
            "change": change,
            "kiosk_id": kiosk.kiosk_id,
            "pharmacy_id": kiosk.pharmacy_id,
            "status": kiosk.status,
        },
        **who,
    )


def kiosk_register(
    *,
    pharmacy: Pharmacy,
    name: str,
    kiosk_id: str | None = None,
    location: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    actor: User | None = None,
    request: Any = None,
    via: str = "",
) -> tuple[Kiosk, str]:
    """Register a kiosk: ``kiosk_create`` and its audit entry in one transaction (no kiosk without
    its record). The secret is returned once, to show to the admin; it is stored nowhere."""
    with transaction.atomic():
        try:
            with transaction.atomic():  # the savepoint keeps the outer transaction usable
                kiosk, secret = kiosk_create(
                    pharmacy=pharmacy,
                    name=name,
                    kiosk_id=kiosk_id,
                    location=location,
                    latitude=latitude,
                    longitude=longitude,
                )
        except IntegrityError as exc:
            raise Conflict(
                _("A kiosk with this id already exists."), code="kiosk_id_taken", field="kiosk_id"
            ) from exc
        _kiosk_audit(
            kiosk, action="create", change="registered", actor=actor, request=request, via=via
        )
    return kiosk, secret


def _kiosk_lock(kiosk: Kiosk | int) -> Kiosk:
    pk = kiosk.pk if isinstance(kiosk, Kiosk) else kiosk
    found = Kiosk.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(_("Kiosk not found."), code="kiosk_not_found")
    return found


def kiosk_rotate_secret(
    *, kiosk: Kiosk | int, actor: User | None = None, request: Any = None, via: str = ""
) -> str:
    """Give a kiosk a new secret and return it (shown once). The old secret stops working at
    commit. Audited. A new secret does not revive a retired kiosk: authentication refuses it by
    its status (the admin and `manage.py kiosk` do not offer it)."""
    secret = codes.new_kiosk_secret()
    with transaction.atomic():
        row = _kiosk_lock(kiosk)
        row.secret_hash = codes.kiosk_secret_hash(secret)
        row.save(update_fields=["secret_hash"])
        _kiosk_audit(
            row, action="update", change="secret_rotated", actor=actor, request=request, via=via
        )
    return secret


def kiosk_retire(
    *, kiosk: Kiosk | int, actor: User | None = None, request: Any = None, via: str = ""
) -> tuple[Kiosk, bool]:
    """Retire a kiosk for good: it is refused at authentication from the commit on (its status),
    and its secret is replaced by one nobody knows, so that no later status edit revives it.
    Nothing is deleted: its dispenses, stock ledger and audit history stay. Idempotent: returns
    (kiosk, False) for a kiosk already retired, with no second audit entry."""
    with transaction.atomic():
        row = _kiosk_lock(kiosk)
        if row.status == Kiosk.Status.RETIRED:
            return row, False
        row.status = Kiosk.Status.RETIRED
        row.secret_hash = codes.kiosk_secret_hash(codes.new_kiosk_secret())
        row.save(update_fields=["status", "secret_hash"])
        _kiosk_audit(row, action="update", change="retired", actor=actor, request=request, via=via)
    return row, True


def kiosk_heartbeat(*, kiosk: Kiosk, info: dict[str, Any]) -> Kiosk:
    now = timezone.now()
    Kiosk.objects.filter(pk=kiosk.pk).update(last_heartbeat_at=now, last_heartbeat_info=info)
    kiosk.last_heartbeat_at = now
    kiosk.last_heartbeat_info = info
    return kiosk


# --- brute-force caps --------------------------------------------------------------------------
# Both caps are counted BEFORE the code is evaluated, each by one conditional UPDATE in autocommit
# (dispense_reserve runs outside any transaction), so the count is committed whatever the
# reservation does next, and concurrent presentations cannot pass a cap: PostgreSQL re-checks an
# UPDATE's WHERE on the newest version of a row it had to wait for (READ COMMITTED), so of 50
# concurrent claims on one counter at most `cap` find it under the cap.


def _kiosk_failure_window() -> dt.timedelta:
    return dt.timedelta(seconds=_setting("PHARMACY_KIOSK_FAILURE_WINDOW_SECONDS", 600))


def _kiosk_max_failures() -> int:
    return _setting("PHARMACY_KIOSK_MAX_CODE_FAILURES", 10)


def _kiosk_open(now: dt.datetime) -> Q:
    """A kiosk takes codes unless its current window already holds `cap` unknown codes."""
    return (
        Q(code_failures_window_start__isnull=True)
        | Q(code_failures_window_start__lt=now - _kiosk_failure_window())
        | Q(code_failures__lt=_kiosk_max_failures())
    )


def _kiosk_rate_limited() -> TooManyAttempts:
    return TooManyAttempts(
        _("Too many unknown codes at this kiosk; wait a few minutes."), code="kiosk_rate_limited"
    )


def _kiosk_check_rate(kiosk: Kiosk, now: dt.datetime) -> None:
    """Early 429 from the row read at authentication, without a query. Only a shortcut: the count
    never falls within a window, so a kiosk closed in that row is closed now; one open in it is
    checked again by the conditional UPDATEs of ``_count_presentation``."""
    start = kiosk.code_failures_window_start
    if (
        start is not None
        and now - start < _kiosk_failure_window()
        and kiosk.code_failures >= _kiosk_max_failures()
    ):
        raise _kiosk_rate_limited()


def _count_presentation(*, kiosk: Kiosk, code_hash: str, now: dt.datetime) -> None:
    """Count one presentation of a code at a kiosk before it is evaluated; raise 429 or 404 if it
    must not be. Call outside any transaction (its counts must survive the reservation's rollback).

    A known code of the kiosk's pharmacy: one UPDATE claims one of its PHARMACY_CODE_MAX_ATTEMPTS,
    only while the kiosk is open. This is the hot path's only counting statement. The kiosk's
    openness is read in the statement's snapshot: a presentation that saw the kiosk open is
    ordered before the unknown code that closed it, so a right guess in a burst of wrong ones is
    either before the cap or refused (429), never evaluated past it.
    An unknown code (or one of another pharmacy): the kiosk's counter is raised only while under
    PHARMACY_KIOSK_MAX_CODE_FAILURES; the 404 is answered only if this request's UPDATE counted it,
    so a window holds at most `cap` 404s per kiosk, however many guesses arrive at once."""
    max_attempts = _setting("PHARMACY_CODE_MAX_ATTEMPTS", 10)
    open_q = _kiosk_open(now)
    claimed = (
        DispenseCode.objects.filter(
            code_hash=code_hash,
            attempts__lt=max_attempts,
            # On the foreign-key column (an IN, not a join), so that the UPDATE stays a plain
            # WHERE on the code row, which is what PostgreSQL re-checks after a row-lock wait.
            prescription__in=Prescription.objects.filter(pharmacy_id=kiosk.pharmacy_id).values(
                "pk"
            ),
        )
        .filter(Exists(Kiosk.objects.filter(open_q, pk=kiosk.pk)))
        .update(attempts=F("attempts") + 1)
    )
    if claimed:
        return
    # Refused or unknown (the rare path).
    known = DispenseCode.objects.filter(
        code_hash=code_hash, prescription__pharmacy_id=kiosk.pharmacy_id
    ).exists()
    if known:
        if not Kiosk.objects.filter(open_q, pk=kiosk.pk).exists():
            raise _kiosk_rate_limited()
        raise TooManyAttempts(
            _("This code has been tried too often; ask the pharmacist for a new one."),
            code="code_locked",
        )
    in_window = Q(code_failures_window_start__gte=now - _kiosk_failure_window())
    counted = Kiosk.objects.filter(open_q, pk=kiosk.pk).update(
        code_failures=Case(When(in_window, then=F("code_failures") + 1), default=Value(1)),
        code_failures_window_start=Case(
            When(in_window, then=F("code_failures_window_start")), default=Value(now)
        ),
    )
    if not counted:
        raise _kiosk_rate_limited()
    # A code of another pharmacy is "unknown" here: it cannot be released at this kiosk.
    raise NotFound(_("Unknown code."), code="code_not_found")


@dataclass
class _Allocation:
    lot: StockLot
    quantity: int


def _allocate(items: list[PrescriptionItem], lots: list[StockLot]) -> list[_Allocation]:
    """First expiry, first out, across the lots of each medication."""
    allocations: list[_Allocation] = []
    for item in items:
        needed = item.quantity
        candidates = sorted(
            (lot for lot in lots if lot.medication_id == item.medication_id),
            key=lambda lot: (lot.expiry, lot.pk),
        )
        for lot in candidates:
            if needed == 0:
                break
            take = min(needed, lot.quantity)
            if take > 0:
                allocations.append(_Allocation(lot, take))
                needed -= take
        if needed:
            raise Conflict(
                _("%(medication)s is out of stock at this kiosk.")
                % {"medication": item.medication.name_ko},
                code="out_of_stock",
                details={"medication_id": item.medication_id},
            )
    return allocations


def dispense_reserve(*, kiosk: Kiosk, code: Any, idempotency_key: str) -> Dispense:
    """A kiosk presents a code: reserve the stock for its prescription and return the dispense.

    Guarantees, each enforced by the database: a prescription has at most one reserved or
    completed dispense (row lock on the prescription + a partial unique constraint); no lot goes
    below zero (row locks on the lots + a conditional UPDATE + a CHECK constraint); an expired lot
    is never used; nothing outside the kiosk-dispensable formulary is released.
    Brute force: every presentation is counted before it is evaluated (``_count_presentation``):
    unknown codes against the kiosk, known ones against the code, each a conditional UPDATE
    committed on its own, so a refused request still counts and concurrent ones cannot pass a
    cap (429 ``kiosk_rate_limited`` / ``code_locked``)."""
    normalized = codes.normalize_code(code)
    if normalized is None:
        raise InvalidInput(
            _("A code is 8 letters and digits, e.g. ABCD-EFGH."),
            code="malformed_code",
            field="code",
        )
    now = timezone.now()
    _kiosk_check_rate(kiosk, now)
    hashed = codes.code_hash(normalized)
    _count_presentation(kiosk=kiosk, code_hash=hashed, now=now)
    return _reserve(kiosk=kiosk, code_hash=hashed, idempotency_key=idempotency_key, now=now)


def _reserve(*, kiosk: Kiosk, code_hash: str, idempotency_key: str, now: dt.datetime) -> Dispense:
    with transaction.atomic():
        # One statement finds the code's prescription and locks it: the same code presented 50
        # times at once is served one at a time, and only the first gets past the checks below.
        prescription = (
            Prescription.objects.select_for_update(of=("self",))
            .select_related("dispense_code")
            .filter(dispense_code__code_hash=code_hash)
            .first()
        )
        if prescription is None or prescription.pharmacy_id != kiosk.pharmacy_id:
            # Counted and found known a moment ago; only a deleted prescription lands here.
            raise NotFound(_("Unknown code."), code="code_not_found")
        code_row = prescription.dispense_code
        status = prescription.status
        if status == Prescription.Status.CANCELLED or code_row.revoked_at is not None:
            raise Conflict(_("This prescription was cancelled."), code="prescription_cancelled")
        if status == Prescription.Status.DISPENSED or code_row.used_at is not None:
            raise Conflict(_("This code has already been used."), code="code_used")
        if status == Prescription.Status.EXPIRED or code_row.expires_at <= now:
            raise Conflict(_("This code has expired."), code="code_expired")
        if status != Prescription.Status.APPROVED:
            raise Conflict(_("This prescription is not approved."), code="not_approved")
        items = list(prescription.items.select_related("medication__category"))
        for item in items:
            if not item.medication.kiosk_dispensable:
                raise Conflict(
                    _("%(medication)s cannot be released by a kiosk; please see the pharmacist.")
                    % {"medication": item.medication.name_ko},
                    code="not_kiosk_dispensable",
                    details={"medication_id": item.medication_id},
                )
        try:
            # Before the lots are locked, so that a code already being released elsewhere fails
            # fast. The partial unique constraint is the check: a live dispense makes this INSERT
            # fail. No savepoint: the Conflict leaves (and rolls back) the transaction.
            dispense = Dispense.objects.create(
                kiosk=kiosk, prescription=prescription, idempotency_key=idempotency_key
            )
        except IntegrityError as exc:
            raise Conflict(
                _("This code is being used at a kiosk right now."), code="dispense_in_progress"
            ) from exc
        # Lock every candidate lot in primary-key order (the locking rule: no deadlock between two
        # prescriptions that share lots). A lot that expires today is already unusable.
        lots = list(
            StockLot.objects.select_for_update()
            .filter(
                kiosk=kiosk,
                medication_id__in=[i.medication_id for i in items],
                expiry__gt=timezone.localdate(now),
                quantity__gt=0,
            )
            .order_by("pk")
        )
        allocations = _allocate(items, lots)
        medications = {item.medication_id: item.medication for item in items}
        lines = []
        for allocation in allocations:
            lot = allocation.lot
            # Conditional UPDATE: even under the lock, never trust the in-memory quantity.
            taken = StockLot.objects.filter(pk=lot.pk, quantity__gte=allocation.quantity).update(
                quantity=F("quantity") - allocation.quantity
            )
            if not taken:
                raise Conflict(_("Out of stock at this kiosk."), code="out_of_stock")
            lines.append(
                DispenseLine(
                    dispense=dispense,
                    lot=lot,
                    medication=medications[lot.medication_id],
                    slot=lot.slot,
                    quantity=allocation.quantity,
                )
            )
        DispenseLine.objects.bulk_create(lines)
        StockMovement.objects.bulk_create(
            StockMovement(
                lot=a.lot, delta=-a.quantity, reason=StockMovement.Reason.RESERVE, dispense=dispense
            )
            for a in allocations
        )
    dispense.prescription = prescription
    # The caller renders the answer from memory: no second round of queries on the hot path.
    dispense._prefetched_objects_cache = {"lines": lines}
    return dispense


def _kiosk_dispense(kiosk: Kiosk, dispense_id: int) -> Dispense:
    dispense = Dispense.objects.filter(pk=dispense_id, kiosk=kiosk).first()
    if dispense is None:
        raise NotFound(_("Dispense not found."), code="dispense_not_found")
    return dispense


def _lock_dispense(dispense: Dispense) -> tuple[Prescription, Dispense]:
    prescription = Prescription.objects.select_for_update().get(pk=dispense.prescription_id)
    return prescription, Dispense.objects.select_for_update().get(pk=dispense.pk)


def _lock_kiosk_dispense(kiosk: Kiosk, dispense_id: int) -> tuple[Prescription, Dispense]:
    """Lock a kiosk's own dispense for a state change (call inside a transaction).

    Same locking rule as the reservation, prescription row first and then the dispense row, but
    the prescription is found through the dispense in the locking statement itself: two round
    trips on the kiosk's hot path instead of a read followed by two locks. A dispense of another
    kiosk is "not found"."""
    prescription = (
        Prescription.objects.select_for_update(of=("self",))
        .filter(dispenses__pk=dispense_id, dispenses__kiosk=kiosk)
        .first()
    )
    if prescription is None:
        raise NotFound(_("Dispense not found."), code="dispense_not_found")
    dispense = Dispense.objects.select_for_update().get(pk=dispense_id)
    dispense.prescription = prescription
    return prescription, dispense


def dispense_confirm_counselling(*, kiosk: Kiosk, dispense_id: int) -> Dispense:
    """Record that the patient read and confirmed the pharmacist's guidance on the kiosk screen.
    Nothing may be released before this. Repeating it is harmless.

    One conditional UPDATE and no explicit locks: it can only stamp a reserved, unconfirmed
    dispense of this kiosk, and the row lock it takes queues it behind a concurrent complete or
    fail (which hold this row), after which PostgreSQL re-checks the status condition. The read
    after it reports what the row is now."""
    Dispense.objects.filter(
        pk=dispense_id,
        kiosk=kiosk,
        status=Dispense.Status.RESERVED,
        counselling_confirmed_at__isnull=True,
    ).update(counselling_confirmed_at=timezone.now())
    dispense = (
        Dispense.objects.select_related("prescription").filter(pk=dispense_id, kiosk=kiosk).first()
    )
    if dispense is None:
        raise NotFound(_("Dispense not found."), code="dispense_not_found")
    if dispense.status != Dispense.Status.RESERVED:
        raise Conflict(_("This dispense is no longer open."), code="dispense_not_open")
    return dispense


def dispense_complete(*, kiosk: Kiosk, dispense_id: int) -> Dispense:
    """The kiosk released the items and the patient took them. Idempotent for a completed dispense."""
    with transaction.atomic():
        prescription, dispense = _lock_kiosk_dispense(kiosk, dispense_id)
        if dispense.status == Dispense.Status.COMPLETED:
            return dispense
        if dispense.status != Dispense.Status.RESERVED:
            raise Conflict(_("This dispense failed; stock was restored."), code="dispense_not_open")
        if dispense.counselling_confirmed_at is None:
            raise Conflict(
                _("The patient has not confirmed the medication guidance."),
                code="counselling_not_confirmed",
            )
        now = timezone.now()
        dispense.status = Dispense.Status.COMPLETED
        dispense.completed_at = now
        dispense.save(update_fields=["status", "completed_at"])
        before = prescription.status
        prescription.status = Prescription.Status.DISPENSED
        prescription.save(update_fields=["status", "updated_at"])
        DispenseCode.objects.filter(prescription=prescription).update(used_at=now)
        _event(prescription, from_status=before, kiosk=kiosk, note=f"dispense {dispense.pk}")
    return dispense


def _restore(dispense: Dispense, *, reason: str, now: dt.datetime) -> None:
    """Put a reserved dispense's boxes back (call holding the dispense's row lock)."""
    lines = list(dispense.lines.order_by("lot_id"))
    dispense.status = Dispense.Status.FAILED
    dispense.failed_at = now
    dispense.failure_reason = reason[:200]
    dispense.save(update_fields=["status", "failed_at", "failure_reason"])
    for line in lines:  # lot-id order: the locking rule
        StockLot.objects.filter(pk=line.lot_id).update(quantity=F("quantity") + line.quantity)
    StockMovement.objects.bulk_create(
        StockMovement(
            lot_id=line.lot_id,
            delta=line.quantity,
            reason=StockMovement.Reason.RESTORE,
            dispense=dispense,
            note=reason[:200],
        )
        for line in lines
    )


def _alert_pharmacist(dispense: Dispense, kiosk: Kiosk, reason: str) -> None:
    ref = f"dispense:{dispense.pk}"
    message = _(
        "Kiosk %(kiosk)s could not release dispense %(id)s (%(reason)s). Stock was restored; "
        "the patient's code still works."
    ) % {"kiosk": kiosk.name, "id": dispense.pk, "reason": reason}
    for model, fields in (
        (PharmacyAlert, {"pharmacy_id": kiosk.pharmacy_id, "kiosk": kiosk}),
        (AdminAlert, {}),
    ):
        try:
            with transaction.atomic():
                model.objects.create(
                    kind=PharmacyAlert.Kind.DISPENSE_FAILED,
                    object_ref=ref,
                    message=message,
                    **fields,
                )
        except IntegrityError:
            pass  # one open alert per dispense already exists


def dispense_fail(*, kiosk: Kiosk, dispense_id: int, reason: str) -> Dispense:
    """The kiosk could not release (a jam): stock goes back, the pharmacist is alerted, and the
    prescription stays approved so the patient can try again. Idempotent for a failed dispense."""
    with transaction.atomic():
        _prescription, dispense = _lock_kiosk_dispense(kiosk, dispense_id)
        if dispense.status == Dispense.Status.FAILED:
            return dispense
        if dispense.status != Dispense.Status.RESERVED:
            raise Conflict(_("This dispense was completed."), code="dispense_not_open")
        _restore(dispense, reason=reason or "failed", now=timezone.now())
        _alert_pharmacist(dispense, kiosk, reason or "failed")
    return dispense


def dispenses_release_stale(*, now: dt.datetime | None = None) -> int:
    """Reservations that a kiosk never completed nor failed (it crashed, lost its network) give
    their stock back after PHARMACY_RESERVATION_TIMEOUT_SECONDS. Each is handled under its locks,
    so a late "complete" and this sweep cannot both win."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=_setting("PHARMACY_RESERVATION_TIMEOUT_SECONDS", 600))
    released = 0
    for dispense in Dispense.objects.filter(status=Dispense.Status.RESERVED, created_at__lt=cutoff):
        with transaction.atomic():
            _prescription, locked = _lock_dispense(dispense)
            if locked.status != Dispense.Status.RESERVED:
                continue
            _restore(locked, reason="timeout", now=now)
            released += 1
    return released


def kiosk_call_request_create(
    *, kiosk: Kiosk, dispense_id: int | None = None, message: str = ""
) -> KioskCallRequest:
    dispense = _kiosk_dispense(kiosk, dispense_id) if dispense_id is not None else None
    return KioskCallRequest.objects.create(
        kiosk=kiosk, pharmacy_id=kiosk.pharmacy_id, dispense=dispense, message=message[:300]
    )


def kiosk_call_request_answer(*, user: User, call_id: int) -> KioskCallRequest:
    pharmacy = _require_pharmacist(user)
    # Conditional UPDATE: two pharmacists clicking at once, one answer recorded.
    KioskCallRequest.objects.filter(
        pk=call_id, pharmacy=pharmacy, status=KioskCallRequest.Status.OPEN
    ).update(status=KioskCallRequest.Status.ANSWERED, answered_by=user, answered_at=timezone.now())
    call = KioskCallRequest.objects.filter(pk=call_id, pharmacy=pharmacy).first()
    if call is None:
        raise NotFound(_("Call request not found."), code="call_not_found")
    return call


def pharmacy_alert_resolve(*, user: User, alert_id: int) -> None:
    pharmacy = _require_pharmacist(user)
    updated = PharmacyAlert.objects.filter(
        pk=alert_id, pharmacy=pharmacy, resolved_at__isnull=True
    ).update(resolved_at=timezone.now(), resolved_by=user)
    if not updated and not PharmacyAlert.objects.filter(pk=alert_id, pharmacy=pharmacy).exists():
        raise NotFound(_("Alert not found."), code="alert_not_found")


# --- stock -------------------------------------------------------------------------------------


def stock_lot_receive(
    *,
    kiosk: Kiosk,
    slot: str,
    medication: Medication,
    lot_number: str,
    expiry: dt.date,
    quantity: int,
    actor: User | None = None,
) -> StockLot:
    """Put boxes of a lot into a kiosk slot (a new lot row, or more of an existing one).

    A slot is one spiral of one product: it refuses a second medication while it holds boxes, and
    a lot number keeps the expiry date it was first received with. Takes the kiosk row lock, so
    two receipts for the same kiosk cannot both pass the slot check."""
    if quantity < 1 or quantity > 10_000:
        raise InvalidInput(
            _("Quantity must be between 1 and 10000."), code="invalid_quantity", field="quantity"
        )
    with transaction.atomic():
        list(Kiosk.objects.select_for_update().filter(pk=kiosk.pk).values_list("pk", flat=True))
        occupied = (
            StockLot.objects.filter(kiosk=kiosk, slot=slot, quantity__gt=0)
            .exclude(medication=medication)
            .exists()
        )
        if occupied:
            raise Conflict(
                _("Slot %(slot)s holds another medication; empty it first.") % {"slot": slot},
                code="slot_occupied",
            )
        lot, created = StockLot.objects.select_for_update().get_or_create(
            kiosk=kiosk,
            slot=slot,
            medication=medication,
            lot_number=lot_number,
            defaults={"expiry": expiry, "quantity": 0},
        )
        if not created and lot.expiry != expiry:
            raise Conflict(
                _("Lot %(lot)s was received with expiry %(date)s.")
                % {"lot": lot_number, "date": lot.expiry},
                code="lot_expiry_mismatch",
            )
        StockLot.objects.filter(pk=lot.pk).update(quantity=F("quantity") + quantity)
        StockMovement.objects.create(
            lot=lot, delta=quantity, reason=StockMovement.Reason.RECEIVE, actor=actor
        )
        lot.refresh_from_db()
    return lot


def stock_adjust(*, user: User, lot_id: int, delta: int, reason: str, note: str = "") -> StockLot:
    """A pharmacist corrects a lot's count or writes boxes off. The CHECK constraint and the
    conditional UPDATE refuse to go below zero."""
    pharmacy = _require_pharmacist(user)
    if reason not in {StockMovement.Reason.ADJUST, StockMovement.Reason.WRITE_OFF}:
        raise InvalidInput(_("Unknown reason."), code="invalid_reason", field="reason")
    if (
        delta == 0
        or abs(delta) > 10_000
        or (reason == StockMovement.Reason.WRITE_OFF and delta > 0)
    ):
        raise InvalidInput(_("Invalid quantity change."), code="invalid_quantity", field="delta")
    with transaction.atomic():
        lot = (
            StockLot.objects.select_for_update().filter(pk=lot_id, kiosk__pharmacy=pharmacy).first()
        )
        if lot is None:
            raise NotFound(_("Stock lot not found."), code="lot_not_found")
        if not StockLot.objects.filter(pk=lot.pk, quantity__gte=-delta).update(
            quantity=F("quantity") + delta
        ):
            raise Conflict(_("The lot does not hold that many boxes."), code="insufficient_stock")
        StockMovement.objects.create(
            lot=lot, delta=delta, reason=reason, actor=user, note=note[:200]
        )
        lot.refresh_from_db()
    return lot


# --- idempotency keys (after pretix's api/views/idempotency) ------------------------------------


def request_fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def idempotency_begin(
    *, kiosk: Kiosk, key: str, method_path: str, fingerprint: str
) -> tuple[IdempotencyRecord | None, tuple[int, Any] | None]:
    """Claim a key. Returns (record, None) for a new key, or (None, (status, body)) to replay the
    stored answer. The insert is its own committed transaction: a concurrent duplicate blocks on
    the unique index until it commits, then sees the record in flight (409)."""
    fields = {"kiosk": kiosk, "key": key, "method_path": method_path, "request_hash": fingerprint}
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint keeps the caller's transaction usable
                return IdempotencyRecord.objects.create(**fields), None
        # Autocommit: one round trip, committed at once (the usual case, a kiosk request).
        return IdempotencyRecord.objects.create(**fields), None
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(kiosk=kiosk, key=key).first()
    if existing is None:  # the first request failed unexpectedly and released the key
        raise Conflict(
            _("A request with this Idempotency-Key is in progress."), code="idempotency_in_flight"
        )
    if existing.request_hash != fingerprint or existing.method_path != method_path:
        raise Unprocessable(
            _("This Idempotency-Key was used with a different request."),
            code="idempotency_key_reused",
        )
    if existing.state == IdempotencyRecord.State.IN_FLIGHT:
        raise Conflict(
            _("A request with this Idempotency-Key is in progress."), code="idempotency_in_flight"
        )
    return None, (existing.response_status, existing.response_body)


def idempotency_finish(*, record: IdempotencyRecord, status: int, body: Any) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.DONE, response_status=status, response_body=body
    )


def idempotency_abort(*, record: IdempotencyRecord) -> None:
    """An unexpected error (a 5xx): forget the key so that the kiosk's retry runs again."""
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT).delete()


def idempotency_records_purge(*, older_than: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Forget stored answers older than any kiosk would retry (a kiosk retries for minutes)."""
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
