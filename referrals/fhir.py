"""A referral as a FHIR R4B (4.3.0) Bundle: the ServiceRequest (what is asked) and the Task
(who is doing it, and where it stands), after FHIR's referral workflow.

The version, identifier systems, reference style and Bundle are shared with the other exports
(config/fhir.py)."""

from __future__ import annotations

from typing import Any

from config import fhir
from config.fhir import System
from referrals.models import Referral, ReferralStatus
from screening.models import CLASS_NAMES

TASK_STATUS: dict[str, str] = {
    ReferralStatus.PROPOSED: "draft",
    ReferralStatus.SENT: "requested",
    ReferralStatus.ACCEPTED: "accepted",
    ReferralStatus.DECLINED: "rejected",
    ReferralStatus.ATTENDED: "in-progress",
    ReferralStatus.NO_SHOW: "failed",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.CANCELLED: "cancelled",
}
REQUEST_STATUS: dict[str, str] = {
    ReferralStatus.PROPOSED: "draft",
    ReferralStatus.SENT: "active",
    ReferralStatus.ACCEPTED: "active",
    ReferralStatus.DECLINED: "active",  # the request stands; another hospital will be asked
    ReferralStatus.ATTENDED: "active",
    ReferralStatus.NO_SHOW: "on-hold",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.CANCELLED: "revoked",
}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def referral_fhir_bundle(referral: Referral) -> dict:
    screening = referral.screening
    patient = screening.patient
    subject = fhir.patient_reference(patient.pseudonym)
    performer = None
    hospital = referral.hospital
    if hospital is not None:
        performer = fhir.logical_reference(
            "Organization", System.HOSPITAL, referral.hospital_id, display=hospital.name
        )
    reason_codes: list[dict[str, Any]] = [
        {"coding": [{"system": System.FINDING, "code": f, "display": str(CLASS_NAMES[f])}]}
        for f in (screening.findings or [])
        if f in CLASS_NAMES
    ] or [{"text": screening.triage}]
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"referral-{referral.pk}",
        "identifier": [fhir.identifier(System.REFERRAL, referral.pk)],
        "status": REQUEST_STATUS[referral.status],
        "intent": "proposal" if referral.status == ReferralStatus.PROPOSED else "order",
        "priority": "urgent" if referral.is_urgent else "routine",
        "category": [
            {
                "coding": [
                    {
                        "system": System.SNOMED,
                        "code": "3457005",
                        "display": "Patient referral",
                    }
                ]
            }
        ],
        "code": {
            "text": "Referral to ophthalmology: "
            + ", ".join(referral.required_specialties or ["general"])
        },
        "subject": subject,
        "authoredOn": _iso(referral.created_at),
        "reasonCode": reason_codes,
        # The screening export's DiagnosticReport carries this identifier.
        "supportingInfo": [
            fhir.logical_reference(
                "DiagnosticReport",
                System.SCREENING,
                screening.pk,
                display=f"Screening {screening.pk}",
            )
        ],
    }
    if performer:
        service_request["performer"] = [performer]
    if referral.appointment_at:
        service_request["occurrenceDateTime"] = _iso(referral.appointment_at)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"referral-task-{referral.pk}",
        "status": TASK_STATUS[referral.status],
        "businessStatus": {"text": referral.status},
        "intent": "order",
        "priority": "urgent" if referral.is_urgent else "routine",
        "focus": fhir.local_reference("ServiceRequest", referral.pk),
        "for": subject,
        "authoredOn": _iso(referral.created_at),
        "lastModified": _iso(referral.updated_at),
    }
    if performer:
        task["owner"] = performer
    if referral.status == ReferralStatus.DECLINED and referral.decline_reason:
        task["statusReason"] = {"text": referral.decline_reason}
    if referral.appointment_at:
        task["executionPeriod"] = {"start": _iso(referral.appointment_at)}
    if referral.diagnosis:
        task["output"] = [{"type": {"text": "diagnosis"}, "valueString": referral.diagnosis}]
    entries = [
        fhir.entry("ServiceRequest", referral.pk, service_request),
        fhir.entry("Task", referral.pk, task),
    ]
    bundle = fhir.collection_bundle(
        entries, bundle_id=f"referral-bundle-{referral.pk}", timestamp=_iso(referral.updated_at)
    )
    return fhir.to_json(bundle)
