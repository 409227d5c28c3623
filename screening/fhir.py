"""FHIR export of a screening: Patient, ImagingStudy, one Observation per eye and class, and the
DiagnosticReport that concludes with the triage.

fhir.resources ships R5 as its default and R4B (4.3) beside it; R4B's Patient, ImagingStudy,
Observation and DiagnosticReport are wire-compatible with R4 for every field used here, so we
build with R4B and validate with its models."""

from __future__ import annotations

import json

from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient

from screening.models import CLASS_NAMES, Screening

SYSTEM = "https://eyebridge.example/fhir"
SEX = {"F": "female", "M": "male", "O": "unknown"}
SNOMED_EYE = {
    "left": ("8966001", "Left eye structure"),
    "right": ("18944008", "Right eye structure"),
}


def _urn(kind: str, key: object) -> str:
    return f"urn:eyebridge:{kind}:{key}"


def screening_bundle(screening: Screening) -> dict:
    patient = screening.patient
    patient_ref = {"reference": _urn("patient", patient.pk)}
    fhir_patient = FhirPatient(
        id=str(patient.pk),
        identifier=[{"system": f"{SYSTEM}/patient-code", "value": patient.pseudonym}],
        name=[{"text": patient.name}],
        gender=SEX.get(patient.sex, "unknown"),
        birthDate=patient.birth_date.isoformat(),
    )
    images = list(screening.images.all())
    study = ImagingStudy(
        id=str(screening.pk),
        status="available",
        subject=patient_ref,
        started=screening.created_at.isoformat(),
        numberOfSeries=len(images),
        numberOfInstances=len(images),
        series=[
            {
                "uid": f"2.25.{int(im.sha256[:30], 16)}",
                "modality": {
                    "system": "http://dicom.nema.org/resources/ontology/DCM",
                    "code": "OP",
                },
                "bodySite": {
                    "system": "http://snomed.info/sct",
                    "code": SNOMED_EYE[im.eye][0],
                    "display": SNOMED_EYE[im.eye][1],
                },
                "numberOfInstances": 1,
                "instance": [
                    {
                        "uid": f"2.25.{int(im.sha256[30:60], 16)}",
                        "sopClass": {
                            "system": "urn:ietf:rfc:3986",
                            "code": "urn:oid:1.2.840.10008.5.1.4.1.1.77.1.5.1",
                        },
                    }
                ],
            }
            for im in images
        ]
        or None,
    )
    observations = []
    for result in screening.results.all():
        for code, probability in result.probabilities.items():
            observations.append(
                Observation(
                    id=f"{screening.pk}-{result.eye}-{code}",
                    status="final",
                    code={
                        "coding": [
                            {
                                "system": f"{SYSTEM}/odir-class",
                                "code": code,
                                "display": str(CLASS_NAMES.get(code, code)),
                            }
                        ],
                        "text": f"AI probability of {CLASS_NAMES.get(code, code)}",
                    },
                    subject=patient_ref,
                    bodySite={
                        "coding": [
                            {
                                "system": "http://snomed.info/sct",
                                "code": SNOMED_EYE[result.eye][0],
                                "display": SNOMED_EYE[result.eye][1],
                            }
                        ]
                    },
                    valueQuantity={
                        "value": round(float(probability), 4),
                        "unit": "probability",
                        "system": "http://unitsofmeasure.org",
                        "code": "1",
                    },
                    interpretation=[
                        {"text": "finding" if code in result.findings else "below threshold"}
                    ],
                    device={"display": f"EyeBridge model {result.model_version}"},
                    effectiveDateTime=(screening.completed_at or timezone.now()).isoformat(),
                )
            )
    report = DiagnosticReport(
        id=str(screening.pk),
        status="final" if screening.status == Screening.Status.COMPLETED else "preliminary",
        code={"text": "AI fundus screening"},
        subject=patient_ref,
        issued=(screening.completed_at or timezone.now()).isoformat(),
        imagingStudy=[{"reference": _urn("imagingstudy", screening.pk)}],
        result=[{"reference": _urn("observation", o.id)} for o in observations] or None,
        conclusion=f"triage: {screening.triage or screening.status}",
    )
    entries = [
        (_urn("patient", patient.pk), fhir_patient),
        (_urn("imagingstudy", screening.pk), study),
        *[(_urn("observation", o.id), o) for o in observations],
        (_urn("diagnosticreport", screening.pk), report),
    ]
    bundle = Bundle(
        type="collection",
        timestamp=timezone.now().isoformat(),
        entry=[{"fullUrl": url, "resource": resource} for url, resource in entries],
    )
    return json.loads(
        bundle.model_dump_json(exclude_none=True)
        if hasattr(bundle, "model_dump_json")
        else bundle.json()
    )
