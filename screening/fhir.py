"""FHIR R4B export of a screening: Patient, ImagingStudy, one Observation per eye and class, and the
DiagnosticReport that concludes with the triage.

The version, identifier systems, reference style and Bundle are shared with the other exports
(config/fhir.py). The DICOM UIDs (study per screening, series per eye, SOP instance per image) are
stored on the rows, random at creation, never derived from the photo: the same file uploaded for
two patients must still be two studies for a PACS.
"""

from __future__ import annotations

from django.utils import timezone

from config import fhir
from config.fhir import System
from screening.models import CLASS_NAMES, Screening

SEX = {"F": "female", "M": "male", "O": "unknown"}
SNOMED_EYE = {
    "left": ("8966001", "Left eye structure"),
    "right": ("18944008", "Right eye structure"),
}
# Ophthalmic Photography 8 Bit Image Storage.
SOP_CLASS_OP_8BIT = "urn:oid:1.2.840.10008.5.1.4.1.1.77.1.5.1"


def _eye_site(eye: str) -> dict:
    code, display = SNOMED_EYE[eye]
    return {"system": System.SNOMED, "code": code, "display": display}


def screening_bundle(screening: Screening) -> dict:
    patient = screening.patient
    subject = fhir.patient_reference(patient.pseudonym, key=patient.pk)
    fhir_patient = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "identifier": [fhir.identifier(System.PATIENT, patient.pseudonym)],
        "name": [{"text": patient.name}],
        "gender": SEX.get(patient.sex, "unknown"),
        "birthDate": patient.birth_date.isoformat(),
    }
    if patient.erased_at is not None:
        # Pseudonymised on request (screening.consent): no name, the birth year only (FHIR allows a
        # partial date; an empty string is not valid FHIR).
        del fhir_patient["name"]
        fhir_patient["birthDate"] = str(patient.birth_date.year)
    images = list(screening.images.all())
    modality = {"system": System.DICOM_DCM, "code": "OP"}
    study = {
        "resourceType": "ImagingStudy",
        "id": str(screening.pk),
        "identifier": [
            {"system": System.DICOM_UID, "value": f"urn:oid:{screening.study_instance_uid}"}
        ],
        "status": "available",
        "modality": [modality] if images else None,
        "subject": subject,
        "started": screening.created_at.isoformat(),
        "numberOfSeries": len(images),
        "numberOfInstances": len(images),
        "series": [
            {
                "uid": image.series_instance_uid,
                "number": number,
                "modality": modality,
                "bodySite": _eye_site(image.eye),
                "numberOfInstances": 1,
                "instance": [
                    {
                        "uid": image.sop_instance_uid,
                        "sopClass": {"system": "urn:ietf:rfc:3986", "code": SOP_CLASS_OP_8BIT},
                        "number": 1,
                    }
                ],
            }
            for number, image in enumerate(images, start=1)
        ]
        or None,
    }
    effective = (screening.completed_at or timezone.now()).isoformat()
    observations = []
    for result in screening.results.all():
        for code, probability in result.probabilities.items():
            name = str(CLASS_NAMES.get(code, code))
            observations.append(
                {
                    "resourceType": "Observation",
                    "id": f"{screening.pk}-{result.eye}-{code}",
                    "status": "final",
                    "code": {
                        "coding": [{"system": System.FINDING, "code": code, "display": name}],
                        "text": f"AI probability of {name}",
                    },
                    "subject": subject,
                    "bodySite": {"coding": [_eye_site(result.eye)]},
                    "valueQuantity": {
                        "value": round(float(probability), 4),
                        "unit": "probability",
                        "system": System.UCUM,
                        "code": "1",
                    },
                    "interpretation": [
                        {"text": "finding" if code in result.findings else "below threshold"}
                    ],
                    "device": {"display": f"EyeBridge model {result.model_version}"},
                    "effectiveDateTime": effective,
                }
            )
    report = {
        "resourceType": "DiagnosticReport",
        "id": str(screening.pk),
        # The referral export points at the screening by this identifier.
        "identifier": [fhir.identifier(System.SCREENING, screening.pk)],
        "status": "final" if screening.status == Screening.Status.COMPLETED else "preliminary",
        "code": {"text": "AI fundus screening"},
        "subject": subject,
        "issued": effective,
        "imagingStudy": [fhir.local_reference("ImagingStudy", screening.pk)],
        "result": [fhir.local_reference("Observation", o["id"]) for o in observations] or None,
        "conclusion": f"triage: {screening.triage or screening.status}",
    }
    entries = [
        fhir.entry("Patient", patient.pk, fhir_patient),
        fhir.entry("ImagingStudy", screening.pk, _without_none(study)),
        *[fhir.entry("Observation", o["id"], o) for o in observations],
        fhir.entry("DiagnosticReport", screening.pk, _without_none(report)),
    ]
    return fhir.to_json(
        fhir.collection_bundle(
            entries, bundle_id=f"screening-{screening.pk}", timestamp=timezone.now().isoformat()
        )
    )


def _without_none(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if v is not None}
