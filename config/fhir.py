"""What the three FHIR exports (screening, prescription, referral) share: the FHIR version they
declare, the identifier and code systems, the reference style, and the Bundle builder.

One place, so that a receiving system sees one patient under one identifier system, one version
declaration and one way of linking resources, whichever export it reads. No app imports here:
the apps pass in what they know.

Version: ``fhir.resources`` 8 ships R5 (its default), R4B and STU3, not R4 (4.0.1) itself. We build
and validate R4B (4.3.0) and say R4B everywhere. For the resources we export (Patient,
ImagingStudy, Observation, DiagnosticReport, MedicationRequest, MedicationDispense, Provenance,
ServiceRequest, Task) R4B changed nothing we use, so an R4 reader takes them too; the test suite
also checks every export with an independent R4 validator (the npm package ``fhir``).

The version is declared twice: in the body (``meta.profile`` names the base Bundle definition of
4.3.0, so a stored export still says what it is) and in the media type
(``application/fhir+json; fhirVersion=4.3``, the spec's parameter, see config/renderers.py).

References: resources inside a Bundle are linked by their ``fullUrl``, a ``urn:uuid:`` (we serve
no RESTful FHIR endpoint, so there is no URL to give). A resource outside the Bundle (the patient
of a prescription, the hospital of a referral) is referenced logically: ``type`` plus an
``identifier`` in one of the systems below, and a ``display``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol

FHIR_RELEASE = "R4B"
FHIR_VERSION = "4.3.0"
# The value of the media type's fhirVersion parameter: major.minor (R4 is 4.0, R4B is 4.3).
FHIR_MIME_VERSION = "4.3"
FHIR_MEDIA_TYPE = "application/fhir+json"
FHIR_CONTENT_TYPE = f"{FHIR_MEDIA_TYPE}; fhirVersion={FHIR_MIME_VERSION}"
BUNDLE_PROFILE = f"http://hl7.org/fhir/StructureDefinition/Bundle|{FHIR_VERSION}"
DESCRIPTION = (
    f"FHIR {FHIR_RELEASE} ({FHIR_VERSION}) collection Bundle, served as "
    f"`{FHIR_CONTENT_TYPE}` (or `application/json` when asked for exactly that)"
)

BASE = "https://eyebridge.example/fhir"


class System:
    """Identifier systems (``sid``) and code systems, one URI per concept for every export."""

    PATIENT = f"{BASE}/sid/patient-code"  # the patient's pseudonym, never the name
    SCREENING = f"{BASE}/sid/screening"
    PRESCRIPTION = f"{BASE}/sid/prescription"
    PRESCRIPTION_ITEM = f"{BASE}/sid/prescription-item"
    REFERRAL = f"{BASE}/sid/referral"
    HOSPITAL = f"{BASE}/sid/hospital"
    USER = f"{BASE}/sid/user"  # health workers and pharmacists, by account id
    FINDING = f"{BASE}/CodeSystem/odir-class"  # the model's classes N D G C A H M O
    MEDICATION = f"{BASE}/CodeSystem/medication"
    SNOMED = "http://snomed.info/sct"
    DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
    DICOM_UID = "urn:dicom:uid"
    UCUM = "http://unitsofmeasure.org"
    PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


# Fixed, so that an export's fullUrls are the same each time it is fetched (it was the referral
# export's namespace before the three were made to share it; its fullUrls did not change).
NAMESPACE = uuid.UUID("0f6c1c1e-6b7e-4d7e-9a55-0e0b00000000")


class _User(Protocol):
    pk: Any
    username: str

    def get_full_name(self) -> str: ...


def full_url(resource_type: str, key: object) -> str:
    """The ``urn:uuid:`` fullUrl of a resource in a Bundle, stable per resource type and key."""
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{resource_type}/{key}')}"


def local_reference(resource_type: str, key: object, *, display: str = "") -> dict:
    """A reference to a resource in the same Bundle, by its fullUrl."""
    ref: dict[str, Any] = {"reference": full_url(resource_type, key), "type": resource_type}
    if display:
        ref["display"] = display
    return ref


def identifier(system: str, value: object) -> dict:
    return {"system": system, "value": str(value)}


def logical_reference(resource_type: str, system: str, value: object, *, display: str = "") -> dict:
    """A reference to a resource that is not in the Bundle, by its business identifier."""
    ref: dict[str, Any] = {"type": resource_type, "identifier": identifier(system, value)}
    if display:
        ref["display"] = display
    return ref


def patient_reference(pseudonym: str, *, key: object | None = None) -> dict:
    """The patient, by pseudonym; with ``key`` also by the fullUrl of the Patient in the Bundle."""
    ref = logical_reference("Patient", System.PATIENT, pseudonym, display=pseudonym)
    if key is not None:
        ref["reference"] = full_url("Patient", key)
    return ref


def user_reference(user: _User) -> dict:
    """A health worker or pharmacist as a Practitioner (account id; the name for display)."""
    name = user.get_full_name() or user.username
    return logical_reference("Practitioner", System.USER, user.pk, display=name)


def entry(resource_type: str, key: object, resource: dict) -> dict:
    """A Bundle entry whose fullUrl matches :func:`local_reference` for the same type and key."""
    return {"fullUrl": full_url(resource_type, key), "resource": resource}


def collection_bundle(
    entries: Iterable[dict], *, bundle_id: str | None = None, timestamp: str | None = None
):  # -> fhir.resources.R4B.bundle.Bundle
    """A collection Bundle that declares its version, validated against the R4B models.

    A malformed resource fails here (in our tests), not in the receiving system."""
    # Imported here: the models are large and only the export endpoints need them.
    from fhir.resources.R4B.bundle import Bundle

    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": {"profile": [BUNDLE_PROFILE]},
        "type": "collection",
        "entry": list(entries),
    }
    if bundle_id:
        bundle["id"] = bundle_id
    if timestamp:
        bundle["timestamp"] = timestamp
    return Bundle.model_validate(bundle)


def to_json(bundle) -> dict:
    """The Bundle as JSON-ready data (FHIR names, no empty elements)."""
    return bundle.model_dump(mode="json", by_alias=True, exclude_none=True)
