"""Plain dicts for the API and templates, rendered in the active language."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from referrals.models import Hospital, Referral, ReferralStatus
from referrals.ranking import Candidate, reason_text
from screening.models import CLASS_NAMES, ResultSource, Screening, Triage
from screening.triage import next_step_text
from screening.triage import reason_text as triage_reason_text


def hospital_dict(hospital: Hospital | None) -> dict[str, Any] | None:
    if hospital is None:
        return None
    return {
        "id": hospital.pk,
        "name": hospital.name,
        "name_en": hospital.name_en,
        "address": hospital.address,
        "phone": hospital.phone,
        "latitude": hospital.latitude,
        "longitude": hospital.longitude,
        "is_partner": hospital.is_partner,
        "open_slots": hospital.open_slots,
        "typical_wait_days": hospital.typical_wait_days,
    }


def candidate_dict(c: Candidate, *, rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "hospital": {
            "id": c.hospital_id,
            "name": c.name,
            "name_en": c.name_en,
            "address": c.address,
            "phone": c.phone,
            "latitude": c.latitude,
            "longitude": c.longitude,
            "is_partner": c.is_partner,
            "open_slots": c.open_slots,
            "typical_wait_days": c.typical_wait_days,
        },
        "distance_km": c.distance_km,
        "specialties": c.matched,
        "score": c.score,
        "reasons": [reason_text(r) for r in c.reasons],
    }


def snapshot_dict(s: dict[str, Any]) -> dict[str, Any]:
    """A candidate stored on a referral (its snapshot), in the same shape as a live candidate."""
    return {
        "rank": s.get("rank"),
        "hospital": {
            "id": s.get("hospital_id"),
            "name": s.get("name", ""),
            "name_en": s.get("name_en", ""),
            "address": s.get("address", ""),
            "phone": s.get("phone", ""),
            "latitude": s.get("latitude"),
            "longitude": s.get("longitude"),
            "is_partner": s.get("is_partner", True),
        },
        "distance_km": s.get("distance_km"),
        "specialties": s.get("specialties", []),
        "score": s.get("score"),
        "reasons": [reason_text(r) for r in s.get("reasons", [])],
    }


def person_name(user: Any) -> str:
    """How a person is named on a page: their full name, else their username (never the
    object's repr)."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def grader_verdict(screening: Screening) -> dict[str, Any] | None:
    """What a grader made of the AI's result, for the referral page: "AI result, confirmed by
    grader X", or "changed by grader X" with the final next step and findings. None while the
    AI's result stands alone (nobody has read it, or nobody was asked to).

    Reads the screening's own result of record (screening.result_of_record), not grading's rows:
    referrals does not import grading, and the result of record is what the referral follows.
    ``screening.final_by`` costs one query unless it was select_related."""
    if screening.final_source != ResultSource.GRADER or not screening.final_triage:
        return None
    name = person_name(screening.final_by)
    changed = screening.final_triage != screening.triage or set(screening.final_findings) != set(
        screening.findings or []
    )
    if changed:
        text = _("Changed by grader %(name)s") % {"name": name}
    else:
        text = _("AI result, confirmed by grader %(name)s") % {"name": name}
    return {
        "changed": changed,
        "text": text,
        "grader": name,
        "triage": screening.final_triage,
        "triage_display": str(Triage(screening.final_triage).label),
        "findings": [(c, CLASS_NAMES[c]) for c in screening.final_findings if c in CLASS_NAMES],
        "next_step": next_step_text(screening.final_triage),
        "at": screening.final_at,
    }


def referral_dict(referral: Referral, *, detail: bool) -> dict[str, Any]:
    screening = referral.screening
    patient = screening.patient
    out: dict[str, Any] = {
        "id": referral.pk,
        "screening": referral.screening_id,
        "patient": {
            "pseudonym": patient.pseudonym,
            "name": patient.name,
            "birth_date": patient.birth_date.isoformat(),
            "sex": patient.sex,
            "phone": patient.phone,
        },
        "status": referral.status,
        "status_display": str(ReferralStatus(referral.status).label),
        "urgency": referral.urgency,
        "hospital": hospital_dict(referral.hospital),
        "required_specialties": referral.required_specialties,
        "findings": [
            f"{f}: {CLASS_NAMES[f]}" for f in screening.findings or [] if f in CLASS_NAMES
        ],
        # The screening's reasons as they were stored, each with a sentence in the active
        # language (never the Python repr of a dict).
        "triage_reasons": [
            {**r, "text": triage_reason_text(r)}
            if isinstance(r, dict)
            else {"code": "text", "text": str(r)}
            for r in screening.reasons or []
        ],
        "appointment_at": referral.appointment_at,
        "decline_reason": referral.decline_reason,
        "diagnosis": referral.diagnosis,
        "outcome_notes": referral.outcome_notes,
        "radius_km": referral.radius_km,
        "proposal_note": referral.proposal_note,
        "sent_at": referral.sent_at,
        "responded_at": referral.responded_at,
        "completed_at": referral.completed_at,
        "created_at": referral.created_at,
    }
    if detail:
        out["candidates"] = [snapshot_dict(s) for s in referral.candidates or []]
        out["events"] = [
            {
                "kind": e.kind,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "hospital": e.hospital_id,
                "actor": e.actor.username if e.actor else None,
                "note": e.note,
                "created_at": e.created_at,
            }
            for e in referral.events.select_related("actor").order_by("created_at", "id")
        ]
    return out
