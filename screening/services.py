"""Writes of the screening app: registration, submission, inference, sweeping.

Every service validates and checks access before it writes; what it writes happens in one
transaction, so a rejected request leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from config.errors import Conflict, Forbidden, InvalidInput
from screening import consent, selectors, uploads
from screening.models import (
    Patient,
    Screening,
    ScreeningImage,
    Sex,
    Symptom,
)
from screening.quality_messages import quality_message


def _require_site(user: User):
    site = selectors.user_site(user=user)
    if site is None:
        raise Forbidden(_("Only a health worker of a screening site can do this."))
    return site


# --- patients ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientInput:
    name: str
    birth_date: dt.date
    sex: str
    phone: str = ""
    region: str = ""
    address: str = ""
    home_latitude: float | None = None
    home_longitude: float | None = None
    has_diabetes: bool = False
    has_hypertension: bool = False
    family_history_glaucoma: bool = False
    high_myopia: bool = False
    allergies: str = ""
    medical_notes: str = ""
    consent_given: bool = False


def _check_patient_fields(values: Mapping[str, Any]) -> None:
    """The checks a patient's fields pass at registration and at every edit (``values`` holds
    all of them, the record's current value where an edit leaves one unchanged)."""
    if not str(values["name"]).strip():
        raise InvalidInput(_("Name is required."), field="name")
    if values["sex"] not in Sex.values:
        raise InvalidInput(_("Unknown sex."), field="sex")
    today = timezone.localdate()
    birth_date = values["birth_date"]
    if (
        not isinstance(birth_date, dt.date)
        or birth_date > today
        or birth_date < dt.date(today.year - 130, 1, 1)
    ):
        raise InvalidInput(_("Birth date is not plausible."), field="birth_date")
    lat, lon = values["home_latitude"], values["home_longitude"]
    if (lat is None) != (lon is None):
        raise InvalidInput(
            _("Give both home latitude and longitude, or neither."), field="home_latitude"
        )
    if lat is not None and not (-90 <= lat <= 90):
        raise InvalidInput(_("Latitude must be between -90 and 90."), field="home_latitude")
    if lon is not None and not (-180 <= lon <= 180):
        raise InvalidInput(_("Longitude must be between -180 and 180."), field="home_longitude")


def _refuse_duplicates(
    *, site, name: str, birth_date: dt.date, phone: str, exclude_id: int | None = None
) -> None:
    """Same name + birth date, or the same phone, at this site is probably the same person:
    Conflict listing the existing records, so the health worker can open one instead of
    splitting a patient's history in two."""
    found = selectors.duplicate_patients(site=site, name=name, birth_date=birth_date, phone=phone)
    if exclude_id is not None:
        found = found.exclude(pk=exclude_id)
    existing = list(found[:5])
    if existing:
        raise Conflict(
            _(
                "A patient with the same name and birth date, or the same phone, already exists at this site."
            ),
            code="possible_duplicate",
            details={
                "duplicates": [
                    {
                        "id": p.id,
                        "pseudonym": p.pseudonym,
                        "name": p.name,
                        "birth_date": p.birth_date.isoformat(),
                    }
                    for p in existing
                ]
            },
        )


def patient_create(*, user: User, data: PatientInput, allow_duplicate: bool = False) -> Patient:
    """Register a patient at the health worker's site.

    Same name + birth date, or the same phone, at this site is probably the same person: unless
    ``allow_duplicate``, raise Conflict listing the existing records so the health worker can open
    one instead of splitting a patient's history in two."""
    site = _require_site(user)
    fields = {k: getattr(data, k) for k in PatientInput.__dataclass_fields__}
    _check_patient_fields(fields)
    if not data.consent_given:
        raise InvalidInput(
            _("The patient's consent to screening must be recorded first."),
            code="consent_required",
            field="consent_given",
        )
    name = data.name.strip()
    if not allow_duplicate:
        _refuse_duplicates(site=site, name=name, birth_date=data.birth_date, phone=data.phone)
    fields["name"] = name
    with transaction.atomic():
        patient = Patient.objects.create(
            site=site,
            created_by=user,
            consent_recorded_by=user,
            consent_recorded_at=timezone.now(),
            **fields,
        )
        # Which text was agreed to, by whom and when: the first event of the consent history.
        consent.patient_consent_record(user=user, patient=patient)
    return patient


# What a later visit may correct: demographics and risk factors. Not the site, the patient code
# or the consent (recorded once, with who and when).
EDITABLE_PATIENT_FIELDS = tuple(
    f for f in PatientInput.__dataclass_fields__ if f != "consent_given"
)
# A change to one of these reruns the duplicate check.
IDENTIFYING_FIELDS = ("name", "birth_date", "phone")


def patient_update(
    *,
    user: User,
    patient_id: int,
    changes: Mapping[str, Any],
    allow_duplicate: bool = False,
    request: Any = None,
) -> Patient:
    """Correct a patient's demographics or risk factors at a later visit.

    ``changes`` names only the fields to change (the API's PATCH) or all of them (the portal's
    form); unknown or non-editable fields are refused. The same checks as registration apply to
    the record as it would be, and a change of name, birth date or phone reruns the duplicate
    check (Conflict unless ``allow_duplicate``). Holds SELECT FOR UPDATE on the patient while it
    reads and writes, so two edits apply one after the other. Writes an audit event naming the
    fields that changed (not their values: the trail must not keep what an erasure removes).
    Past screenings keep the triage decided then; the next screening uses the new risk factors.
    Returns the patient; an edit that changes nothing writes nothing."""
    from accounts.audit import audit_record

    if not user.is_platform_admin:
        _require_site(user)
    unknown = sorted(set(changes) - set(EDITABLE_PATIENT_FIELDS))
    if unknown:
        raise InvalidInput(
            _("This field cannot be changed: %(field)s.") % {"field": unknown[0]},
            code="not_editable",
            field=unknown[0],
        )
    with transaction.atomic():
        patient = selectors.patient_get(user=user, patient_id=patient_id)
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        consent.patient_require_consent(patient)
        values = {f: getattr(patient, f) for f in EDITABLE_PATIENT_FIELDS}
        clean = dict(changes)
        if "name" in clean:
            clean["name"] = str(clean["name"]).strip()
        for text in ("phone", "region", "address", "allergies", "medical_notes"):
            if text in clean:
                clean[text] = "" if clean[text] is None else str(clean[text]).strip()
        values.update(clean)
        _check_patient_fields(values)
        changed = [
            f for f in EDITABLE_PATIENT_FIELDS if f in clean and clean[f] != getattr(patient, f)
        ]
        if not changed:
            return patient
        if not allow_duplicate and any(f in changed for f in IDENTIFYING_FIELDS):
            _refuse_duplicates(
                site=patient.site,
                name=values["name"],
                birth_date=values["birth_date"],
                phone=values["phone"],
                exclude_id=patient.pk,
            )
        for f in changed:
            setattr(patient, f, values[f])
        patient.save(update_fields=changed)
        audit_record(
            action="update",
            user=user,
            object_type="patient",
            object_ids=[patient.pk],
            request=request,
            url_name="screening.services.patient_update",
            extra={"changed": changed, "patient_ids": [str(patient.pk)]},
        )
    return patient


# --- submission ----------------------------------------------------------------------------
def _validate_symptoms(symptoms: Iterable[str]) -> list[str]:
    clean: list[str] = []
    for s in symptoms:
        if s not in Symptom.values:
            raise InvalidInput(
                _("Unknown symptom: %(symptom)s.") % {"symptom": repr(str(s)[:40])},
                code="unknown_symptom",
                field="symptoms",
            )
        if s not in clean:
            clean.append(s)
    return clean


def screening_submit(
    *,
    user: User,
    patient_id: int,
    left_image=None,
    right_image=None,
    symptoms: Iterable[str] = (),
    notes: str = "",
    accept_ungradable: bool = False,
    kept: Mapping[str, PendingPhoto] | None = None,
    keep_accepted: bool = False,
) -> Screening:
    """Validate both photos (content, size, quality gate) inside the request, store them and queue
    the screening for inference once the transaction commits.

    A photo that fails the quality gate is refused with reasons the health worker can act on
    ("blurred: hold the camera still and retake"), unless ``accept_ungradable`` says a retake
    already failed: then it is stored as ungradable and triage sends the patient to an in-person
    examination.

    ``kept`` holds eyes accepted by an earlier, refused submission (stored already), used where
    no new photo of that eye comes. With ``keep_accepted`` (the portal), a refusal stores the
    eyes that passed and lists them in ``details["accepted"]``, so the health worker retakes only
    the eye that failed."""
    from ml.quality import assess_quality

    _require_site(user)
    patient = selectors.patient_get(user=user, patient_id=patient_id)
    consent.patient_require_consent(patient)
    clean_symptoms = _validate_symptoms(symptoms)
    kept = {
        eye: photo
        for eye, photo in (kept or {}).items()
        if {"left": left_image, "right": right_image}.get(eye) is None
    }
    if left_image is None and right_image is None and not kept:
        raise InvalidInput(
            _("Add a photo of at least one eye."), code="no_image", field="left_image"
        )

    errors: dict[str, list[dict]] = {}
    checked: list[tuple[str, np.ndarray, dict]] = []
    for eye, upload in (("left", left_image), ("right", right_image)):
        if upload is None:
            continue
        field = f"{eye}_image"
        try:
            rgb = uploads.decode(uploads.read_upload(upload, field=field), field=field)
        except InvalidInput as exc:
            errors[field] = [{"code": exc.code, "message": exc.message}]
            continue
        quality = assess_quality(rgb)
        if not quality.gradable and not accept_ungradable:
            errors[field] = [
                {"code": i.code, "message": quality_message(i.code, i.message)}
                for i in quality.issues
            ]
            continue
        checked.append((eye, rgb, quality.to_dict()))
    if errors:
        first = next(iter(errors.values()))[0]
        details: dict = {"errors": errors}
        if keep_accepted:
            details["accepted"] = {
                **kept,
                **{
                    eye: _pending(uploads.store_rgb(pixels), found)
                    for eye, pixels, found in checked
                },
            }
        raise InvalidInput(first["message"], code=first["code"], details=details)

    created_files: list[str] = []
    try:
        stored: list[tuple[str, PendingPhoto, dict]] = [
            (eye, photo, photo.quality) for eye, photo in kept.items()
        ]
        for eye, pixels, found in checked:
            image = uploads.store_rgb(pixels)
            if image.created:
                created_files.append(image.path)
            stored.append((eye, _pending(image, found), found))
        with transaction.atomic():
            screening = Screening.objects.create(
                site=patient.site,
                patient=patient,
                health_worker=user,
                symptoms=clean_symptoms,
                notes=notes[:2000],
                status=Screening.Status.QUEUED,
                queued_at=timezone.now(),
            )
            ScreeningImage.objects.bulk_create(
                ScreeningImage(
                    screening=screening,
                    eye=eye,
                    path=image.path,
                    sha256=image.sha256,
                    width=image.width,
                    height=image.height,
                    gradable=bool(quality["gradable"]),
                    quality=quality,
                )
                for eye, image, quality in stored
            )
            screening_enqueue(screening_id=screening.id)
    except Exception:
        uploads.delete_stored(created_files)
        raise
    return screening


@dataclass(frozen=True)
class PendingPhoto:
    """An eye's photo that passed the checks and is stored, waiting for its screening."""

    path: str
    sha256: str
    width: int
    height: int
    quality: dict


def _pending(image: uploads.StoredImage, quality: dict) -> PendingPhoto:
    return PendingPhoto(
        path=image.path,
        sha256=image.sha256,
        width=image.width,
        height=image.height,
        quality=quality,
    )


def screening_enqueue(*, screening_id: int) -> None:
    """Send the inference task after the surrounding transaction commits: a worker must never look
    for a row it cannot see yet, and a rolled-back submission must send nothing."""
    from screening.tasks import screening_infer

    transaction.on_commit(lambda: screening_infer.delay(screening_id))


# --- inference ----------------------------------------------------------------------------
# The inference use case lives in its own module; its services are re-exported here so that
# callers keep one place to import screening's writes from.
from screening.inference_services import (  # noqa: E402
    screening_mark_failed,
    screening_run_inference,
    screening_store_result,
    screening_sweep_stuck,
    screening_trigger_downstream,
    screenings_predict,
)

# A person's final read, stored beside the AI's result (screening/result_of_record.py).
from screening.result_of_record import (  # noqa: E402
    screening_result_of_record_set,
    screening_trigger_result_changed,
)

__all__ = [
    "PatientInput",
    "patient_create",
    "patient_update",
    "screening_enqueue",
    "screening_mark_failed",
    "screening_result_of_record_set",
    "screening_run_inference",
    "screening_store_result",
    "screening_submit",
    "screening_sweep_stuck",
    "screening_trigger_downstream",
    "screening_trigger_result_changed",
    "screenings_predict",
]
