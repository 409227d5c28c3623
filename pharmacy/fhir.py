"""FHIR R4B export of a prescription: one MedicationRequest per item, one MedicationDispense per
released line, and a Provenance for the pharmacist's decision, as a collection Bundle.

The version, identifier systems, reference style and Bundle are shared with the other exports
(config/fhir.py).

Who is who: ``requester`` is whoever asked for the medication, the health worker (or, for a
protocol proposal, the EyeBridge protocol as a Device). The pharmacist does not request and does
not administer (``performer`` is the one who gives the medication), and MedicationRequest has no
"approver" element: the pharmacist's approval or rejection is a Provenance with the pharmacist as
``verifier``, present only once they have decided.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch

from accounts.models import User
from config import fhir
from config.fhir import System
from pharmacy.models import Dispense, DispenseLine, Prescription

# Keyed by the plain status strings that the models hold.
REQUEST_STATUS: dict[str, str] = {
    Prescription.Status.PENDING_APPROVAL: "draft",
    Prescription.Status.APPROVED: "active",
    Prescription.Status.DISPENSED: "completed",
    Prescription.Status.REJECTED: "cancelled",
    Prescription.Status.CANCELLED: "cancelled",
    Prescription.Status.EXPIRED: "stopped",
}
DISPENSE_STATUS: dict[str, str] = {
    Dispense.Status.RESERVED: "in-progress",
    Dispense.Status.COMPLETED: "completed",
    Dispense.Status.FAILED: "stopped",
}
PROTOCOL_DEVICE = {"type": "Device", "display": "EyeBridge triage protocol"}


def _medication(medication) -> dict:
    return {
        "coding": [
            {"system": System.MEDICATION, "code": medication.code, "display": medication.name_en}
        ],
        "text": f"{medication.name_ko} / {medication.name_en} {medication.strength}".strip(),
    }


def _was_approved(prescription: Prescription) -> bool:
    """A decided prescription that was not rejected was approved (it may since have been
    dispensed, cancelled or have expired): it became an order."""
    return bool(prescription.decided_by_id) and prescription.status != Prescription.Status.REJECTED


def prescription_bundle(*, prescription: Prescription):  # -> fhir.resources.R4B.bundle.Bundle
    patient_ref = fhir.patient_reference(prescription.patient.pseudonym)
    requester = (
        fhir.user_reference(prescription.requested_by)
        if prescription.requested_by is not None
        else PROTOCOL_DEVICE
    )
    dispenses = list(
        prescription.dispenses.select_related("kiosk").prefetch_related(
            Prefetch("lines", queryset=DispenseLine.objects.select_related("medication", "lot"))
        )
    )
    approved = _was_approved(prescription)
    entries = []
    request_keys: dict[int, str] = {}
    for item in prescription.items.all():
        key = f"{prescription.pk}-{item.pk}"
        request_keys[item.medication_id] = key
        resource = {
            "resourceType": "MedicationRequest",
            "id": f"rx{prescription.pk}-{item.pk}",
            "identifier": [fhir.identifier(System.PRESCRIPTION_ITEM, key)],
            # The items of one prescription share it: FHIR's way to say "one prescription".
            "groupIdentifier": fhir.identifier(System.PRESCRIPTION, prescription.pk),
            "status": REQUEST_STATUS[prescription.status],
            "intent": "order" if approved else "proposal",
            "medicationCodeableConcept": _medication(item.medication),
            "subject": patient_ref,
            "authoredOn": prescription.created_at.isoformat(),
            "requester": requester,
            "dispenseRequest": {"quantity": {"value": item.quantity, "unit": "package"}},
        }
        if prescription.request_note:
            resource["reasonCode"] = [{"text": prescription.request_note}]
        if prescription.status == Prescription.Status.REJECTED and prescription.decision_note:
            resource["statusReason"] = {"text": prescription.decision_note}
        guidance = prescription.counselling or {}
        if guidance:
            resource["dosageInstruction"] = [
                {
                    "text": " / ".join(
                        guidance[lang][k] for k in ("dose", "frequency", "duration")
                    ),
                    "patientInstruction": guidance[lang]["warnings"],
                }
                for lang in ("ko", "en")
                if lang in guidance
            ]
        if prescription.decision_note:
            resource["note"] = [{"text": prescription.decision_note}]
        entries.append(fhir.entry("MedicationRequest", key, resource))
    for dispense in dispenses:
        for line in dispense.lines.all():
            key = f"{dispense.pk}-{line.pk}"
            resource = {
                "resourceType": "MedicationDispense",
                "id": f"disp{dispense.pk}-{line.pk}",
                "status": DISPENSE_STATUS[dispense.status],
                "medicationCodeableConcept": _medication(line.medication),
                "subject": patient_ref,
                "quantity": {"value": line.quantity, "unit": "package"},
                "location": {"display": dispense.kiosk.name},
                "note": [{"text": f"lot {line.lot.lot_number}, slot {line.slot}"}],
            }
            if line.medication_id in request_keys:
                resource["authorizingPrescription"] = [
                    fhir.local_reference("MedicationRequest", request_keys[line.medication_id])
                ]
            if dispense.completed_at:
                resource["whenHandedOver"] = dispense.completed_at.isoformat()
            entries.append(fhir.entry("MedicationDispense", key, resource))
    if prescription.decided_at and request_keys and prescription.decided_by is not None:
        decision = _decision(
            prescription, decided_by=prescription.decided_by, decided_at=prescription.decided_at
        )
        entries.append(fhir.entry("Provenance", f"rx{prescription.pk}-decision", decision))
    return fhir.collection_bundle(entries, bundle_id=f"prescription-{prescription.pk}")


def _decision(prescription: Prescription, *, decided_by: User, decided_at: dt.datetime) -> dict:
    """The pharmacist's decision on every request of the prescription."""
    approved = _was_approved(prescription)
    return {
        "resourceType": "Provenance",
        "id": f"rx{prescription.pk}-decision",
        "target": [
            fhir.local_reference("MedicationRequest", f"{prescription.pk}-{item.pk}")
            for item in prescription.items.all()
        ],
        "recorded": decided_at.isoformat(),
        "activity": {"text": "approved" if approved else "rejected"},
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": System.PROVENANCE_PARTICIPANT,
                            "code": "verifier",
                            "display": "Verifier",
                        }
                    ]
                },
                "who": fhir.user_reference(decided_by),
            }
        ],
    }
