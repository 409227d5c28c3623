"""FHIR R4 export of a prescription (MedicationRequest per item) and its dispenses
(MedicationDispense per released line), as a collection Bundle.

fhir.resources 8 ships R5 by default; its R4B package is the R4-compatible one (MedicationRequest and
MedicationDispense are unchanged between R4 and R4B).
"""

from __future__ import annotations

from django.db.models import Prefetch
from fhir.resources.R4B.bundle import Bundle

from pharmacy.models import Dispense, DispenseLine, Prescription

SYSTEM = "https://eyebridge.example/fhir"
REQUEST_STATUS = {
    Prescription.Status.PENDING_APPROVAL: "draft",
    Prescription.Status.APPROVED: "active",
    Prescription.Status.DISPENSED: "completed",
    Prescription.Status.REJECTED: "cancelled",
    Prescription.Status.CANCELLED: "cancelled",
    Prescription.Status.EXPIRED: "stopped",
}
DISPENSE_STATUS = {
    Dispense.Status.RESERVED: "in-progress",
    Dispense.Status.COMPLETED: "completed",
    Dispense.Status.FAILED: "stopped",
}


def _medication(medication) -> dict:  # noqa: ANN001
    return {
        "coding": [
            {
                "system": f"{SYSTEM}/medication",
                "code": medication.code,
                "display": medication.name_en,
            }
        ],
        "text": f"{medication.name_ko} / {medication.name_en} {medication.strength}".strip(),
    }


def prescription_bundle(*, prescription: Prescription) -> Bundle:
    patient_ref = {
        "identifier": {"system": f"{SYSTEM}/patient", "value": prescription.patient.pseudonym}
    }
    dispenses = list(
        prescription.dispenses.select_related("kiosk").prefetch_related(
            Prefetch("lines", queryset=DispenseLine.objects.select_related("medication", "lot"))
        )
    )
    entries = []
    request_urls: dict[int, str] = {}
    for item in prescription.items.all():
        url = f"urn:eyebridge:medicationrequest:{prescription.pk}-{item.pk}"
        request_urls[item.medication_id] = url
        resource = {
            "resourceType": "MedicationRequest",
            "id": f"rx{prescription.pk}-{item.pk}",
            "identifier": [{"system": f"{SYSTEM}/prescription", "value": str(prescription.pk)}],
            "status": REQUEST_STATUS[prescription.status],
            "intent": "order" if prescription.decided_at else "proposal",
            "medicationCodeableConcept": _medication(item.medication),
            "subject": patient_ref,
            "authoredOn": (prescription.decided_at or prescription.created_at).isoformat(),
            "dispenseRequest": {"quantity": {"value": item.quantity, "unit": "package"}},
        }
        if prescription.decided_by_id:
            resource["requester"] = {
                "display": prescription.decided_by.get_full_name()
                or prescription.decided_by.username
            }
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
        entries.append({"fullUrl": url, "resource": resource})
    for dispense in dispenses:
        for line in dispense.lines.all():
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
            if line.medication_id in request_urls:
                resource["authorizingPrescription"] = [
                    {"reference": request_urls[line.medication_id]}
                ]
            if dispense.completed_at:
                resource["whenHandedOver"] = dispense.completed_at.isoformat()
            entries.append(
                {
                    "fullUrl": f"urn:eyebridge:medicationdispense:{dispense.pk}-{line.pk}",
                    "resource": resource,
                }
            )
    return Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries})
