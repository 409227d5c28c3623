"""FHIR R4B export of a screening's grader reads: the screening's own Bundle (Patient,
ImagingStudy, the AI's Observations, DiagnosticReport; screening.fhir) plus one Observation per
read and eye.

Each grader Observation names the grader as ``performer`` (a Practitioner by account id, as the
other exports name health workers and pharmacists) and points through ``derivedFrom`` at the AI
Observations it was read against: screening.fhir gives those the ids ``<screening>-<eye>-<class>``
and config.fhir derives their fullUrls from type and id, so the references resolve inside this
Bundle (an eye without an AI result, its photo ungradable, points at the ImagingStudy instead).
The grader's next step is the value; whether the eye was gradable, each finding, the diabetic
retinopathy grade, the read's role and whether it is the result of record are components.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from config import fhir
from config.fhir import System
from grading.models import DrGrade, GraderRead, GradingCase, ReadRole
from screening.fhir import SNOMED_EYE, screening_bundle
from screening.models import CLASS_NAMES, Triage

READ_SYSTEM = f"{fhir.BASE}/sid/grader-read"
CODES = f"{fhir.BASE}/CodeSystem/grading"  # grader-read, gradable, dr-grade, read-role, ...
TRIAGE = f"{fhir.BASE}/CodeSystem/triage"
ICDR = f"{fhir.BASE}/CodeSystem/icdr-severity"  # International Clinical DR severity scale
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _code(system: str, code: str, display: str = "") -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def observation_id(read: GraderRead, eye: str) -> str:
    return f"grading-{read.pk}-{eye}"


def read_observations(case: GradingCase) -> list[dict[str, Any]]:
    """One Observation per read and eye (the case's reads, eyes and graders prefetched)."""
    screening = case.screening
    patient = screening.patient
    subject = fhir.patient_reference(patient.pseudonym, key=patient.pk)
    ai = {r.eye: r for r in screening.results.all()}
    observations = []
    for read in case.reads.all():
        final = case.final_read_id == read.pk
        for eye in read.eyes.all():
            result = ai.get(eye.eye)
            derived = (
                [
                    fhir.local_reference("Observation", f"{screening.pk}-{eye.eye}-{code}")
                    for code in result.probabilities
                ]
                if result is not None
                else [fhir.local_reference("ImagingStudy", screening.pk)]
            )
            components: list[dict[str, Any]] = [
                {"code": _code(CODES, "gradable", "Gradable"), "valueBoolean": eye.gradable},
                *(
                    {
                        "code": _code(System.FINDING, c, str(CLASS_NAMES.get(c, c))),
                        "valueBoolean": True,
                    }
                    for c in eye.findings
                ),
                {
                    "code": _code(CODES, "read-role", "Read role"),
                    "valueCodeableConcept": _code(CODES, read.role, str(ReadRole(read.role).label)),
                },
                {
                    "code": _code(CODES, "result-of-record", "Result of record"),
                    "valueBoolean": final,
                },
            ]
            if eye.dr_grade:
                components.append(
                    {
                        "code": _code(CODES, "dr-grade", "Diabetic retinopathy grade"),
                        "valueCodeableConcept": _code(
                            ICDR, eye.dr_grade, str(DrGrade(eye.dr_grade).label)
                        ),
                    }
                )
            code, display = SNOMED_EYE[eye.eye]
            observation: dict[str, Any] = {
                "resourceType": "Observation",
                "id": observation_id(read, eye.eye),
                "identifier": [fhir.identifier(READ_SYSTEM, f"{read.pk}-{eye.eye}")],
                "status": "final",
                "category": [_code(CATEGORY, "exam", "Exam")],
                "code": {
                    **_code(CODES, "grader-read", "Grader's read of a fundus photograph"),
                    "text": "Grader's read of a fundus photograph",
                },
                "subject": subject,
                "effectiveDateTime": read.created_at.isoformat(),
                "issued": read.created_at.isoformat(),
                "performer": [fhir.user_reference(read.grader)],
                "bodySite": {
                    "coding": [{"system": System.SNOMED, "code": code, "display": display}]
                },
                "valueCodeableConcept": _code(
                    TRIAGE, read.next_step, str(Triage(read.next_step).label)
                ),
                "derivedFrom": derived,
                "component": components,
            }
            if read.note:
                observation["note"] = [{"text": read.note}]
            observations.append(observation)
    return observations


def grading_bundle(case: GradingCase) -> dict[str, Any]:
    """The screening's Bundle with the grader Observations added, validated as a whole."""
    base = screening_bundle(case.screening)
    entries = [
        *base["entry"],
        *(fhir.entry("Observation", o["id"], o) for o in read_observations(case)),
    ]
    return fhir.to_json(
        fhir.collection_bundle(
            entries,
            bundle_id=f"grading-{case.screening_id}",
            timestamp=timezone.now().isoformat(),
        )
    )
