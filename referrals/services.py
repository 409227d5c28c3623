"""Writes for referrals. Every status change is one conditional UPDATE ... WHERE status IN
(expected) plus a ReferralEvent row, in one transaction; the patient is told after commit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import Role
from config.errors import Conflict, Forbidden, InvalidInput, NotFound
from referrals import ranking
from referrals.models import (
    ACTIVE_STATUSES,
    Hospital,
    Referral,
    ReferralEvent,
    ReferralStatus,
)
from referrals.recall_hooks import referral_changed
from referrals.selectors import (
    referral_get_for_user,
    referral_origin,
    screening_get_for_health_worker,
    screening_urgent,
    user_hospital_id,
)
from screening.consent import patient_may_be_contacted
from screening.models import Screening, Triage
from screening.result_of_record import screening_of_record

logger = logging.getLogger("eyebridge.referrals")

REFERRABLE_TRIAGE = {Triage.REFERABLE, Triage.URGENT, Triage.UNGRADABLE}
MAX_TEXT = 2000


def escalate_after_hours(urgency: str) -> float:
    if urgency == Referral.Urgency.URGENT:
        return float(settings.REFERRAL_ESCALATE_URGENT_AFTER_HOURS)
    return float(settings.REFERRAL_ESCALATE_AFTER_HOURS)


# --- proposal -------------------------------------------------------------------------------


def _rank_for(screening: Screening) -> dict[str, Any]:
    """The proposal fields for a screening: origin, urgency, required specialties, candidates."""
    required = ranking.required_specialties(
        findings=screening.findings or [], triage=screening.triage
    )
    urgent = screening_urgent(screening)
    fields: dict[str, Any] = {
        "urgency": Referral.Urgency.URGENT if urgent else Referral.Urgency.ROUTINE,
        "required_specialties": required,
        "candidates": [],
        "proposal_note": "",
    }
    origin = referral_origin(screening=screening)
    if origin is None:
        fields["proposal_note"] = "no_origin"
        return fields
    lat, lon, source = origin
    result = ranking.rank_hospitals(
        latitude=lat,
        longitude=lon,
        required=required,
        urgent=urgent,
        k=settings.REFERRAL_CANDIDATES,
    )
    fields.update(
        origin_source=source,
        origin_latitude=lat,
        origin_longitude=lon,
        radius_km=result.radius_km,
        candidates=[c.snapshot(rank=i + 1) for i, c in enumerate(result.candidates)],
        proposal_note="" if result.candidates else "none_in_range",
    )
    return fields


def referral_propose_for_screening(*, screening_id: int) -> Referral | None:
    """Propose a referral with ranked candidates for a referable, urgent or ungradable screening.

    Idempotent: a screening that already has any referral (active, or cancelled by the health
    worker) gets nothing new, and the partial unique constraint on active referrals stops two
    concurrent deliveries of the task from both inserting. Returns the referral, or None."""
    screening = screening_of_record(screening_id=screening_id)
    if screening is None or screening.triage not in REFERRABLE_TRIAGE:
        return None
    existing = screening.referrals.order_by("-created_at").first()
    if existing is not None:
        return existing
    fields = _rank_for(screening)
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                screening=screening, status=ReferralStatus.PROPOSED, **fields
            )
            _record(
                referral,
                kind=ReferralEvent.Kind.PROPOSED,
                from_status="",
                actor=None,
                note=fields["proposal_note"],
            )
    except IntegrityError:
        # Another delivery of the same task won the race on one_active_referral_per_screening.
        return screening.referrals.filter(status__in=ACTIVE_STATUSES).first()
    return referral


# --- transitions ----------------------------------------------------------------------------


def _record(
    referral: Referral, *, kind: str, from_status: str, actor, note: str = ""
) -> ReferralEvent:
    event = ReferralEvent.objects.create(
        referral=referral,
        kind=kind,
        from_status=from_status,
        to_status=referral.status,
        hospital_id=referral.hospital_id,
        actor=actor if actor and actor.is_authenticated else None,
        note=note,
    )
    # The patient's recall follows every referral change (open: no due date; missed: back on
    # the health worker's list), in this transaction (referrals.recall_hooks).
    referral_changed(referral=referral)
    # Staff notifications (new referral -> the hospital, outcome -> the health worker), in this
    # transaction so that a rolled-back transition tells no one (referrals.notifications).
    from referrals.notifications import referral_event_notify_staff

    referral_event_notify_staff(event=event)
    # After commit: a rolled-back transition must not text the patient, and the worker must be
    # able to see the event row.
    transaction.on_commit(lambda: _enqueue_notify(event.pk))
    return event


def _enqueue_notify(event_id: int) -> None:
    from referrals.tasks import referral_notify_patient

    try:
        referral_notify_patient.delay(event_id)
    except Exception:
        # The transition is committed; a broker outage must not turn it into a 500. Send inline
        # instead (idempotent: the dedupe key is per event).
        logger.exception("could not enqueue referral message %s; sending inline", event_id)
        referral_event_notify(event_id=event_id)


def _transition(
    *,
    referral: Referral,
    expected: Iterable[str],
    to: str,
    kind: str,
    actor,
    note: str = "",
    where: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> Referral:
    """Move the referral from one of ``expected`` to ``to`` with a conditional UPDATE.

    The WHERE on status (and on ``where``, e.g. the hospital) is the lock: of two staff who accept
    and decline the same referral at once, exactly one UPDATE matches the row and the other gets
    a 409, whatever order the requests arrive in."""
    now = timezone.now()
    with transaction.atomic():
        from_status = ""
        # One conditional UPDATE per expected status, so the history records the exact status
        # the row was in when it changed.
        for status in expected:
            if Referral.objects.filter(pk=referral.pk, status=status, **(where or {})).update(
                status=to, updated_at=now, **(fields or {})
            ):
                from_status = status
                break
        if not from_status:
            current = (
                Referral.objects.filter(pk=referral.pk).values_list("status", flat=True).first()
            )
            raise Conflict(
                _("This referral was changed by someone else; it is now %(status)s.")
                % {"status": ReferralStatus(current).label if current else "?"},
                code="status_conflict",
                details={"status": current},
            )
        referral.refresh_from_db()
        _record(referral, kind=kind, from_status=from_status, actor=actor, note=note)
    return referral


def _clean_text(value: Any, *, field: str, required: bool) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise InvalidInput(_("This field is required."), field=field, code="required")
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("At most %(n)d characters.") % {"n": MAX_TEXT}, field=field)
    if "\x00" in text:
        raise InvalidInput(_("Text contains a NUL character."), field=field)
    return text


def _require_health_worker(user, referral: Referral) -> None:
    # referral_get_for_user already hid other sites' referrals (404); this stops a hospital
    # user who can see the referral from acting as the health worker.
    if not (user.role == Role.HEALTH_WORKER or user.is_platform_admin):
        raise Forbidden(_("Only the screening site's health workers can do this."))


def _require_hospital_staff(user, referral: Referral) -> int:
    hospital_id = user_hospital_id(user)
    if hospital_id is None or hospital_id != referral.hospital_id:
        raise Forbidden(_("Only staff of the receiving hospital can do this."))
    return hospital_id


def referral_send(*, user, screening_id: int, hospital_id: Any, note: str = "") -> Referral:
    """The health worker confirms a hospital: the proposed (or declined, or missed) referral is
    sent to it; with no active referral, one is created and sent. 409 if one is already with a
    hospital."""
    screening = screening_get_for_health_worker(user=user, screening_id=screening_id)
    if not (user.role == Role.HEALTH_WORKER or user.is_platform_admin):
        raise Forbidden(_("Only the screening site's health workers can do this."))
    try:
        hospital_pk = int(hospital_id)
    except (TypeError, ValueError):
        raise InvalidInput(_("Choose a hospital."), field="hospital") from None
    hospital = Hospital.objects.filter(pk=hospital_pk).first()
    if hospital is None:
        raise InvalidInput(_("Unknown hospital."), field="hospital", code="unknown_hospital")
    if not hospital.accepts_referrals:
        raise InvalidInput(
            _("This hospital does not accept referrals."), field="hospital", code="not_accepting"
        )
    note = _clean_text(note, field="note", required=False)
    now = timezone.now()
    send_fields = {
        "hospital_id": hospital.pk,
        "sent_at": now,
        "responded_at": None,
        "appointment_at": None,
        "decline_reason": "",
        "escalation_exhausted": False,
    }
    active = screening.referrals.filter(status__in=ACTIVE_STATUSES).first()
    if active is None:
        fields = _rank_for(screening)
        try:
            with transaction.atomic():
                referral = Referral.objects.create(
                    screening=screening,
                    status=ReferralStatus.SENT,
                    hospital=hospital,
                    sent_at=now,
                    **fields,
                )
                _record(
                    referral, kind=ReferralEvent.Kind.SENT, from_status="", actor=user, note=note
                )
        except IntegrityError:
            # Two health workers created a referral for the same screening at once.
            raise Conflict(
                _("This screening already has an active referral."), code="active_referral_exists"
            ) from None
        return referral
    # A sent referral that no hospital answered and escalation could not re-route any more may
    # be re-sent by hand; any other referral with a hospital is taken.
    exhausted = active.status == ReferralStatus.SENT and active.escalation_exhausted
    if (
        active.status
        not in (ReferralStatus.PROPOSED, ReferralStatus.DECLINED, ReferralStatus.NO_SHOW)
        and not exhausted
    ):
        raise Conflict(
            _("This referral is already with a hospital."),
            code="already_sent",
            details={"referral": active.pk, "status": active.status},
        )
    return _transition(
        referral=active,
        expected=[active.status],
        to=ReferralStatus.SENT,
        kind=ReferralEvent.Kind.SENT,
        actor=user,
        note=note,
        # For the exhausted case: only while still unanswered (a late accept wins with a 409 here).
        where={"escalation_exhausted": True} if exhausted else None,
        fields=send_fields,
    )


def referral_cancel(*, user, referral_id: int, reason: str = "") -> Referral:
    referral = referral_get_for_user(user=user, referral_id=referral_id)
    _require_health_worker(user, referral)
    reason = _clean_text(reason, field="reason", required=False)
    return _transition(
        referral=referral,
        expected=[
            ReferralStatus.PROPOSED,
            ReferralStatus.SENT,
            ReferralStatus.DECLINED,
            ReferralStatus.NO_SHOW,
            ReferralStatus.ACCEPTED,
        ],
        to=ReferralStatus.CANCELLED,
        kind=ReferralEvent.Kind.CANCELLED,
        actor=user,
        note=reason,
    )


def _parse_appointment(value: Any) -> dt.datetime:
    when: dt.datetime | None
    if isinstance(value, dt.datetime):
        when = value
    else:
        from django.utils.dateparse import parse_datetime

        try:
            when = parse_datetime(str(value or "").strip())
        except ValueError:
            when = None
        if when is None:
            raise InvalidInput(
                _("Give the appointment as a date and time."), field="appointment_at"
            )
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    if when < timezone.now() - dt.timedelta(minutes=5):
        raise InvalidInput(_("The appointment must be in the future."), field="appointment_at")
    if when > timezone.now() + dt.timedelta(days=366):
        raise InvalidInput(_("The appointment must be within a year."), field="appointment_at")
    return when


def referral_accept(*, user, referral_id: int, appointment_at: Any, note: str = "") -> Referral:
    """Hospital staff accept with an appointment. Conditional on status=sent and on the referral
    still being addressed to their hospital (escalation may have re-routed it meanwhile)."""
    referral = referral_get_for_user(user=user, referral_id=referral_id)
    hospital_id = _require_hospital_staff(user, referral)
    when = _parse_appointment(appointment_at)
    note = _clean_text(note, field="note", required=False)
    return _transition(
        referral=referral,
        expected=[ReferralStatus.SENT],
        to=ReferralStatus.ACCEPTED,
        kind=ReferralEvent.Kind.ACCEPTED,
        actor=user,
        note=note,
        where={"hospital_id": hospital_id},
        fields={"appointment_at": when, "responded_at": timezone.now()},
    )


def referral_decline(*, user, referral_id: int, reason: Any) -> Referral:
    referral = referral_get_for_user(user=user, referral_id=referral_id)
    hospital_id = _require_hospital_staff(user, referral)
    reason = _clean_text(reason, field="reason", required=True)
    return _transition(
        referral=referral,
        expected=[ReferralStatus.SENT],
        to=ReferralStatus.DECLINED,
        kind=ReferralEvent.Kind.DECLINED,
        actor=user,
        note=reason,
        where={"hospital_id": hospital_id},
        fields={"decline_reason": reason, "responded_at": timezone.now()},
    )


def _hospital_outcome(*, user, referral_id: int, note: Any, to: str, kind: str) -> Referral:
    """Attended or no-show: the hospital records what happened to an accepted referral."""
    referral = referral_get_for_user(user=user, referral_id=referral_id)
    hospital_id = _require_hospital_staff(user, referral)
    note = _clean_text(note, field="note", required=False)
    return _transition(
        referral=referral,
        expected=[ReferralStatus.ACCEPTED],
        to=to,
        kind=kind,
        actor=user,
        note=note,
        where={"hospital_id": hospital_id},
    )


def referral_mark_attended(*, user, referral_id: int, note: str = "") -> Referral:
    return _hospital_outcome(
        user=user,
        referral_id=referral_id,
        note=note,
        to=ReferralStatus.ATTENDED,
        kind=ReferralEvent.Kind.ATTENDED,
    )


def referral_mark_no_show(*, user, referral_id: int, note: str = "") -> Referral:
    return _hospital_outcome(
        user=user,
        referral_id=referral_id,
        note=note,
        to=ReferralStatus.NO_SHOW,
        kind=ReferralEvent.Kind.NO_SHOW,
    )


def referral_complete(*, user, referral_id: int, diagnosis: Any, notes: Any = "") -> Referral:
    """The hospital records the diagnosis; completing an accepted referral implies attendance."""
    referral = referral_get_for_user(user=user, referral_id=referral_id)
    hospital_id = _require_hospital_staff(user, referral)
    diagnosis = _clean_text(diagnosis, field="diagnosis", required=True)
    notes = _clean_text(notes, field="notes", required=False)
    return _transition(
        referral=referral,
        expected=[ReferralStatus.ATTENDED, ReferralStatus.ACCEPTED],
        to=ReferralStatus.COMPLETED,
        kind=ReferralEvent.Kind.COMPLETED,
        actor=user,
        note=diagnosis,
        where={"hospital_id": hospital_id},
        fields={"diagnosis": diagnosis, "outcome_notes": notes, "completed_at": timezone.now()},
    )


# --- patient messages -----------------------------------------------------------------------


def _patient_message(event: ReferralEvent) -> str | None:
    referral = event.referral
    hospital = event.hospital.name if event.hospital else ""
    kinds = ReferralEvent.Kind
    if event.kind == kinds.PROPOSED:
        return _(
            "EyeBridge: your eye screening needs a specialist visit. Your health worker will "
            "arrange a hospital with you."
        )
    if event.kind in (kinds.SENT, kinds.ESCALATED):
        return _(
            "EyeBridge: we have sent your referral to %(hospital)s. We will tell you when they "
            "give you an appointment."
        ) % {"hospital": hospital}
    if event.kind == kinds.ACCEPTED:
        when = timezone.localtime(referral.appointment_at) if referral.appointment_at else None
        return _("EyeBridge: %(hospital)s has given you an appointment on %(when)s.") % {
            "hospital": hospital,
            "when": date_format(when, "DATETIME_FORMAT") if when else "",
        }
    if event.kind == kinds.DECLINED:
        return _(
            "EyeBridge: %(hospital)s cannot see you. Your health worker will choose another "
            "hospital."
        ) % {"hospital": hospital}
    if event.kind == kinds.NO_SHOW:
        return _(
            "EyeBridge: you missed your appointment at %(hospital)s. Your health worker will "
            "contact you to book again."
        ) % {"hospital": hospital}
    if event.kind == kinds.COMPLETED:
        return _(
            "EyeBridge: your visit to %(hospital)s is complete. Ask your health worker about "
            "the result."
        ) % {"hospital": hospital}
    if event.kind == kinds.CANCELLED:
        return _("EyeBridge: your eye hospital referral has been cancelled.")
    return None  # attended and internal events: nothing new for the patient


def referral_event_notify(*, event_id: int) -> bool:
    """Text the patient about one event. Idempotent: message_send's dedupe key is per event."""
    from accounts.messaging import message_send

    event = (
        ReferralEvent.objects.select_related("referral__screening__patient", "hospital")
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return False
    with translation.override(settings.LANGUAGE_CODE):
        body = _patient_message(event)
    if body is None:
        return False
    patient = event.referral.screening.patient
    if not patient_may_be_contacted(patient):
        return False  # withdrew consent: no contact (screening.consent)
    message = message_send(
        to=patient.phone, body=body, topic="referral", dedupe_key=f"referral-event:{event.pk}"
    )
    return message is not None


def hospital_get(*, hospital_id: int) -> Hospital:
    hospital = Hospital.objects.filter(pk=hospital_id).first()
    if hospital is None:
        raise NotFound(_("Hospital not found."))
    return hospital


DEFAULT_SPECIALTIES = [
    ("general", "일반 안과", "General ophthalmology"),
    ("retina", "망막", "Retina"),
    ("glaucoma", "녹내장", "Glaucoma"),
    ("cataract", "백내장·전안부", "Cataract / anterior segment"),
    ("neuro", "신경안과", "Neuro-ophthalmology"),
    ("paediatric", "소아안과", "Paediatric ophthalmology"),
    ("cornea", "각막", "Cornea"),
    ("oculoplastics", "성형안과", "Oculoplastics"),
]


def specialties_ensure_defaults() -> None:
    """Create the standard specialties if missing (migration 0002 does this too; a flushed test
    database or a hand-cleaned registry may lack them). Idempotent."""
    from referrals.models import Specialty

    for code, name, name_en in DEFAULT_SPECIALTIES:
        Specialty.objects.get_or_create(code=code, defaults={"name": name, "name_en": name_en})


# Escalation is its own use case (referrals/escalation.py); re-exported so that callers keep one
# place to import referrals' writes from.
from referrals.escalation import (  # noqa: E402
    referral_escalate,
    referrals_escalate_overdue,
    referrals_overdue,
)

__all__ = [
    "escalate_after_hours",
    "hospital_get",
    "referral_accept",
    "referral_cancel",
    "referral_complete",
    "referral_decline",
    "referral_escalate",
    "referral_event_notify",
    "referral_mark_attended",
    "referral_mark_no_show",
    "referral_propose_for_screening",
    "referral_send",
    "referrals_escalate_overdue",
    "referrals_overdue",
    "specialties_ensure_defaults",
]
