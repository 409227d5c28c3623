"""A referral as a FHIR R4 (R4B, 4.3) Bundle: the ServiceRequest (what is asked) and the Task
(who is doing it, and where it stands), after FHIR's referral workflow."""

from __future__ import annotations

import uuid

from fhir.resources.R4B.bundle import Bundle

from referrals.models import Referral, ReferralStatus
from screening.models import CLASS_NAMES

S = ReferralStatus
TASK_STATUS = {
    S.PROPOSED: "draft",
    S.SENT: "requested",
    S.ACCEPTED: "accepted",
    S.DECLINED: "rejected",
    S.ATTENDED: "in-progress",
    S.NO_SHOW: "failed",
    S.COMPLETED: "completed",
    S.CANCELLED: "cancelled",
}
REQUEST_STATUS = {
    S.PROPOSED: "draft",
    S.SENT: "active",
    S.ACCEPTED: "active",
    S.DECLINED: "active",  # the request stands; another hospital will be asked
    S.ATTENDED: "active",
    S.NO_SHOW: "on-hold",
    S.COMPLETED: "completed",
    S.CANCELLED: "revoked",
}
NAMESPACE = uuid.UUID("0f6c1c1e-6b7e-4d7e-9a55-0e0b00000000")  # stable fullUrls per referral
SYSTEM = "urn:eyebridge"


def _urn(kind: str, pk: int) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{kind}/{pk}')}"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def referral_fhir_bundle(referral: Referral) -> dict:
    screening = referral.screening
    patient = screening.patient
    subject = {
        "identifier": {"system": f"{SYSTEM}:patient", "value": patient.pseudonym},
        "display": patient.pseudonym,
    }
    performer = None
    if referral.hospital_id:
        performer = {
            "identifier": {"system": f"{SYSTEM}:hospital", "value": str(referral.hospital_id)},
            "display": referral.hospital.name,
        }
    request_url = _urn("ServiceRequest", referral.pk)
    reason_codes = [
        {"coding": [{"system": f"{SYSTEM}:finding", "code": f, "display": str(CLASS_NAMES[f])}]}
        for f in (screening.findings or [])
        if f in CLASS_NAMES
    ] or [{"text": screening.triage}]
    service_request = {
        "resourceType": "ServiceRequest",
        "id": f"referral-{referral.pk}",
        "identifier": [{"system": f"{SYSTEM}:referral", "value": str(referral.pk)}],
        "status": REQUEST_STATUS[referral.status],
        "intent": "proposal" if referral.status == S.PROPOSED else "order",
        "priority": "urgent" if referral.is_urgent else "routine",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
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
        "supportingInfo": [
            {
                "identifier": {"system": f"{SYSTEM}:screening", "value": str(screening.pk)},
                "display": f"Screening {screening.pk}",
            }
        ],
    }
    if performer:
        service_request["performer"] = [performer]
    if referral.appointment_at:
        service_request["occurrenceDateTime"] = _iso(referral.appointment_at)
    task = {
        "resourceType": "Task",
        "id": f"referral-task-{referral.pk}",
        "status": TASK_STATUS[referral.status],
        "businessStatus": {"text": referral.status},
        "intent": "order",
        "priority": "urgent" if referral.is_urgent else "routine",
        "focus": {"reference": request_url},
        "for": subject,
        "authoredOn": _iso(referral.created_at),
        "lastModified": _iso(referral.updated_at),
    }
    if performer:
        task["owner"] = performer
    if referral.status == S.DECLINED and referral.decline_reason:
        task["statusReason"] = {"text": referral.decline_reason}
    if referral.appointment_at:
        task["executionPeriod"] = {"start": _iso(referral.appointment_at)}
    if referral.diagnosis:
        task["output"] = [{"type": {"text": "diagnosis"}, "valueString": referral.diagnosis}]
    bundle = {
        "resourceType": "Bundle",
        "id": f"referral-bundle-{referral.pk}",
        "type": "collection",
        "timestamp": _iso(referral.updated_at),
        "entry": [
            {"fullUrl": request_url, "resource": service_request},
            {"fullUrl": _urn("Task", referral.pk), "resource": task},
        ],
    }
    # Validate against the FHIR model: a malformed resource fails here, in our tests, not at
    # the receiving hospital's system.
    return Bundle.model_validate(bundle).model_dump(mode="json", by_alias=True, exclude_none=True)
