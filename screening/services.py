"""Writes of the screening app: registration, submission, inference, sweeping.

Every service validates and checks access before it writes; what it writes happens in one
transaction, so a rejected request leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AdminAlert, User
from config.errors import Conflict, Forbidden, InvalidInput
from screening import selectors, uploads
from screening.models import (
    EyeResult,
    Patient,
    Screening,
    ScreeningImage,
    Sex,
    Symptom,
    TriageRule,
)
from screening.quality_messages import quality_message

logger = logging.getLogger("eyebridge.screening")
RISK_FIELDS = ("has_diabetes", "has_hypertension", "family_history_glaucoma", "high_myopia")


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


def patient_create(*, user: User, data: PatientInput, allow_duplicate: bool = False) -> Patient:
    """Register a patient at the health worker's site.

    Same name + birth date, or the same phone, at this site is probably the same person: unless
    ``allow_duplicate``, raise Conflict listing the existing records so the health worker can open
    one instead of splitting a patient's history in two."""
    site = _require_site(user)
    name = data.name.strip()
    if not name:
        raise InvalidInput(_("Name is required."), field="name")
    if data.sex not in Sex.values:
        raise InvalidInput(_("Unknown sex."), field="sex")
    today = timezone.localdate()
    if data.birth_date > today or data.birth_date < dt.date(today.year - 130, 1, 1):
        raise InvalidInput(_("Birth date is not plausible."), field="birth_date")
    if not data.consent_given:
        raise InvalidInput(
            _("The patient's consent to screening must be recorded first."),
            code="consent_required",
            field="consent_given",
        )
    if (data.home_latitude is None) != (data.home_longitude is None):
        raise InvalidInput(
            _("Give both home latitude and longitude, or neither."), field="home_latitude"
        )
    if data.home_latitude is not None and not (-90 <= data.home_latitude <= 90):
        raise InvalidInput(_("Latitude must be between -90 and 90."), field="home_latitude")
    if data.home_longitude is not None and not (-180 <= data.home_longitude <= 180):
        raise InvalidInput(_("Longitude must be between -180 and 180."), field="home_longitude")
    if not allow_duplicate:
        existing = list(
            selectors.duplicate_patients(
                site=site, name=name, birth_date=data.birth_date, phone=data.phone
            )[:5]
        )
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
    fields = {k: getattr(data, k) for k in PatientInput.__dataclass_fields__}
    fields["name"] = name
    return Patient.objects.create(
        site=site,
        created_by=user,
        consent_recorded_by=user,
        consent_recorded_at=timezone.now(),
        **fields,
    )


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
) -> Screening:
    """Validate both photos (content, size, quality gate) inside the request, store them and queue
    the screening for inference once the transaction commits.

    A photo that fails the quality gate is refused with reasons the health worker can act on
    ("blurred: hold the camera still and retake"), unless ``accept_ungradable`` says a retake
    already failed: then it is stored as ungradable and triage sends the patient to an in-person
    examination."""
    from ml.quality import assess_quality

    _require_site(user)
    patient = selectors.patient_get(user=user, patient_id=patient_id)
    clean_symptoms = _validate_symptoms(symptoms)
    if left_image is None and right_image is None:
        raise InvalidInput(
            _("Add a photo of at least one eye."), code="no_image", field="left_image"
        )

    errors: dict[str, list[dict]] = {}
    checked: list[tuple[str, object, dict]] = []
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
        raise InvalidInput(first["message"], code=first["code"], details={"errors": errors})

    created_files: list[str] = []
    try:
        stored = []
        for eye, rgb, quality in checked:
            image = uploads.store_rgb(rgb)
            if image.created:
                created_files.append(image.path)
            stored.append((eye, image, quality))
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


def screening_enqueue(*, screening_id: int) -> None:
    """Send the inference task after the surrounding transaction commits: a worker must never look
    for a row it cannot see yet, and a rolled-back submission must send nothing."""
    from screening.tasks import screening_infer

    transaction.on_commit(lambda: screening_infer.delay(screening_id))


# --- inference -----------------------------------------------------------------------------
def _claim(screening_id: int) -> bool:
    """Take the screening for this delivery. A conditional UPDATE, so that of two deliveries
    arriving together (a sweeper re-enqueue beside the original) the database decides, and the
    attempt counter is exact."""
    now = timezone.now()
    return bool(
        Screening.objects.filter(
            pk=screening_id,
            status__in=[Screening.Status.QUEUED, Screening.Status.PROCESSING],
            attempts__lt=settings.SCREENING_MAX_ATTEMPTS,
        ).update(status=Screening.Status.PROCESSING, attempts=F("attempts") + 1, started_at=now)
    )


def screening_mark_failed(*, screening_id: int, error: str) -> bool:
    """Give up on a screening (after the last attempt): visible to admins, one alert."""
    updated = Screening.objects.filter(
        pk=screening_id, status__in=[Screening.Status.QUEUED, Screening.Status.PROCESSING]
    ).update(status=Screening.Status.FAILED, error=error[:2000], completed_at=timezone.now())
    if updated:
        logger.error("screening %s failed for good: %s", screening_id, error)
        try:
            with transaction.atomic():
                AdminAlert.objects.create(
                    kind="screening_failed",
                    object_ref=f"screening:{screening_id}",
                    message=f"Screening {screening_id} failed after {settings.SCREENING_MAX_ATTEMPTS} attempts: {error[:500]}",
                )
        except IntegrityError:
            pass
    return bool(updated)


def screening_run_inference(*, screening_id: int) -> str:
    """Run the ensemble on a queued screening and store results, triage and the downstream step.

    Idempotent: a redelivered or duplicated task finds the screening finished (or claims it again
    after a worker died mid-way) and never stores a second result (one_result_per_eye) or a second
    downstream record. The model runs outside any transaction; only the short write of the
    results is atomic, under a row lock. Returns what happened, for logs and tests."""
    if not _claim(screening_id):
        screening = Screening.objects.filter(pk=screening_id).first()
        if screening is None:
            return "missing"
        if screening.is_finished:
            return "already_finished"
        screening_mark_failed(
            screening_id=screening_id, error="too many attempts (worker crashed or task failed)"
        )
        return "failed"

    from screening.inference import get_ensemble, model_thresholds

    screening = Screening.objects.select_related("patient").get(pk=screening_id)
    images = list(screening.images.all())
    gradable = [im for im in images if im.gradable]
    ensemble = get_ensemble() if gradable else None
    predictions = {}
    heatmaps: dict[str, str] = {}
    if gradable:
        import cv2

        arrays = []
        for im in gradable:
            bgr = cv2.imread(str(uploads.media_path(im.path)), cv2.IMREAD_COLOR)
            if bgr is None:
                raise RuntimeError(f"stored image {im.path} is missing or unreadable")
            arrays.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        for im, pred in zip(gradable, ensemble.predict(arrays, heatmaps=True), strict=True):
            predictions[im.eye] = pred
            if pred.heatmap_png:
                heatmaps[im.eye] = uploads.store_bytes(
                    pred.heatmap_png, suffix=".png", subdir="heatmaps"
                ).path

    from screening.triage import EyeInput, decide, resolve_rules

    patient = screening.patient
    rules = resolve_rules(
        model_thresholds=(ensemble.thresholds if ensemble is not None else model_thresholds()),
        rule_rows=TriageRule.objects.all(),
        risk_factors={f for f in RISK_FIELDS if getattr(patient, f)},
    )
    outcome = decide(
        eyes=[
            EyeInput(
                eye=im.eye,
                gradable=im.gradable,
                probabilities=predictions[im.eye].probabilities if im.eye in predictions else None,
            )
            for im in images
        ],
        symptoms=screening.symptoms,
        rules=rules,
    )
    version = ensemble.version if ensemble is not None else ""

    with transaction.atomic():
        locked = Screening.objects.select_for_update().get(pk=screening_id)
        if locked.status != Screening.Status.PROCESSING:
            return "already_finished"
        existing = set(
            EyeResult.objects.filter(screening_id=screening_id).values_list("eye", flat=True)
        )
        EyeResult.objects.bulk_create(
            EyeResult(
                screening_id=screening_id,
                eye=eye,
                probabilities=pred.probabilities,
                quality=pred.quality.to_dict() if pred.quality is not None else {},
                top_class=pred.top_class,
                findings=outcome.eye_findings.get(eye, []),
                heatmap_path=heatmaps.get(eye, ""),
                model_version=pred.model_version,
            )
            for eye, pred in predictions.items()
            if eye not in existing
        )
        locked.status = Screening.Status.COMPLETED if gradable else Screening.Status.UNGRADABLE
        locked.triage = outcome.triage
        locked.reasons = outcome.reasons
        locked.findings = outcome.findings
        locked.model_version = version
        locked.completed_at = timezone.now()
        locked.error = ""
        locked.save(
            update_fields=[
                "status",
                "triage",
                "reasons",
                "findings",
                "model_version",
                "completed_at",
                "error",
            ]
        )
        transaction.on_commit(lambda: screening_trigger_downstream(screening_id=screening_id))
    return "completed"


def screening_trigger_downstream(*, screening_id: int) -> None:
    """Hand the finished screening to pharmacy and referrals by task name (they import screening,
    never the reverse). Their tasks are idempotent, so a repeat is harmless."""
    from config.celery import app

    for name in settings.SCREENING_COMPLETED_TASKS:
        app.send_task(name, args=[screening_id])


def screening_sweep_stuck(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Re-enqueue screenings whose task was lost (Redis restarted, a worker died before acking and
    the message expired) and give up on those out of attempts. Safe beside a live delivery:
    inference claims the row with a conditional UPDATE and stores results once."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.SCREENING_STUCK_AFTER_SECONDS)
    stuck = Screening.objects.filter(
        Q(status=Screening.Status.QUEUED, queued_at__lt=cutoff)
        | Q(status=Screening.Status.PROCESSING, started_at__lt=cutoff)
    ).values_list("id", "attempts")
    requeued = failed = 0
    from screening.tasks import screening_infer

    for screening_id, attempts in stuck:
        if attempts >= settings.SCREENING_MAX_ATTEMPTS:
            failed += screening_mark_failed(
                screening_id=screening_id, error="stuck after the last attempt"
            )
            continue
        # Push queued_at forward so the next sweep does not re-send while this copy waits.
        Screening.objects.filter(pk=screening_id).update(queued_at=now)
        screening_infer.delay(screening_id)
        requeued += 1
    return {"requeued": requeued, "failed": failed}
