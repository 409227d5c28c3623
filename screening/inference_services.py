"""Writes of the inference use case: claim, predict, store, hand downstream, sweep.

A delivery of ``screening_infer`` claims its screening and, in the same breath, up to
``SCREENING_BATCH_SIZE - 1`` other queued screenings (``SELECT ... FOR UPDATE SKIP LOCKED``
then a conditional ``UPDATE``), so that when screenings queue up they go through the network
together. A lone screening waits for nothing: the extra claim is one query. The partners'
own deliveries later find them finished. Prediction runs outside any transaction; each
screening's results are stored in their own short transaction under a row lock, once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import AdminAlert
from ml.decision import Decision
from screening import consent, uploads
from screening.models import EyeResult, Patient, Screening, ScreeningImage, TriageRule
from screening.recall import patient_recall_refresh

logger = logging.getLogger("eyebridge.screening")
RISK_FIELDS = ("has_diabetes", "has_hypertension", "family_history_glaucoma", "high_myopia")


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
            # A patient who withdrew consent is never inferred (screening.consent).
            patient__consent_withdrawn_at__isnull=True,
        ).update(status=Screening.Status.PROCESSING, attempts=F("attempts") + 1, started_at=now)
    )


def _claim_queued(*, exclude: int, limit: int) -> list[int]:
    """Claim up to ``limit`` other screenings still waiting in the queue, oldest first.

    SKIP LOCKED lets two workers batch at once without waiting on each other's rows; the
    conditional UPDATE (``status = queued``) is what guarantees a row goes to one of them
    (SQLite has no row locks: there only the UPDATE decides)."""
    if limit <= 0:
        return []
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Screening.objects.select_for_update(skip_locked=True)
            .filter(
                status=Screening.Status.QUEUED,
                attempts__lt=settings.SCREENING_MAX_ATTEMPTS,
                patient__consent_withdrawn_at__isnull=True,
            )
            .exclude(pk=exclude)
            .order_by("queued_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        claimed = []
        for sid in ids:
            if Screening.objects.filter(pk=sid, status=Screening.Status.QUEUED).update(
                status=Screening.Status.PROCESSING, attempts=F("attempts") + 1, started_at=now
            ):
                claimed.append(sid)
    return claimed


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


@dataclass
class ScreeningPrediction:
    """What the model and the triage made of one screening, before anything is stored."""

    screening_id: int
    images: list[ScreeningImage]
    predictions: dict = field(default_factory=dict)  # eye -> ml.ensemble.EyePrediction
    outcome: object = None  # screening.triage.TriageResult
    version: str = ""


def _rules_for(screening: Screening, rule_rows: list, decision: Decision) -> dict:
    from screening.triage import resolve_rules

    patient = screening.patient
    return resolve_rules(
        model_thresholds=decision,
        rule_rows=rule_rows,
        risk_factors={f for f in RISK_FIELDS if getattr(patient, f)},
    )


def screenings_predict(*, screening_ids: list[int]) -> list[ScreeningPrediction]:
    """Run the ensemble once over every gradable eye of these screenings, then triage each.

    The stored photos are decoded once, by ``ml.preprocess``; the quality gate's result from
    the upload is passed on rather than computed again; each eye is judged (and gets its
    heatmap) at its own patient's thresholds, risk factors and admin rules included."""
    from ml.preprocess import decode_image
    from ml.quality import QualityResult
    from screening.inference import get_ensemble, model_decision
    from screening.triage import EyeInput, decide

    screenings = {
        s.id: s
        for s in Screening.objects.select_related("patient")
        .prefetch_related("images")
        .filter(pk__in=screening_ids)
    }
    rule_rows = list(TriageRule.objects.all())
    preds = [
        ScreeningPrediction(screening_id=sid, images=list(screenings[sid].images.all()))
        for sid in screening_ids
        if sid in screenings
    ]
    gradable = [(p, im) for p in preds for im in p.images if im.gradable]
    ensemble = get_ensemble() if gradable else None
    base = ensemble.decision if ensemble is not None else model_decision()
    rules = {p.screening_id: _rules_for(screenings[p.screening_id], rule_rows, base) for p in preds}
    if ensemble is not None:
        pictures = []
        for _p, im in gradable:
            try:
                pictures.append(decode_image(uploads.read_stored(im.path)))
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"stored image {im.path} is missing or unreadable") from exc
        results = ensemble.predict(
            pictures,
            heatmaps=True,
            quality=[
                QualityResult.from_dict(im.quality) if im.quality else None for _, im in gradable
            ],
            thresholds=[
                {c: r.threshold for c, r in rules[p.screening_id].items()} for p, _ in gradable
            ],
        )
        for (p, im), res in zip(gradable, results, strict=True):
            p.predictions[im.eye] = res
        for p in preds:
            p.version = ensemble.version
    for p in preds:
        p.outcome = decide(
            eyes=[
                EyeInput(
                    eye=im.eye,
                    gradable=im.gradable,
                    probabilities=p.predictions[im.eye].probabilities
                    if im.eye in p.predictions
                    else None,
                )
                for im in p.images
            ],
            symptoms=screenings[p.screening_id].symptoms,
            rules=rules[p.screening_id],
        )
    return preds


def screening_store_result(*, prediction: ScreeningPrediction) -> str:
    """Store one screening's results, triage and next step, once.

    Under the screening's row lock: a screening another delivery already finished is left
    alone (``one_result_per_eye`` would refuse a second result anyway). Heatmap files are
    content-addressed, so writing one twice is harmless."""
    heatmaps = {
        eye: uploads.store_bytes(pred.heatmap_png, suffix=".png", subdir="heatmaps").path
        for eye, pred in prediction.predictions.items()
        if pred.heatmap_png
    }
    outcome = prediction.outcome
    sid = prediction.screening_id
    gradable = any(im.gradable for im in prediction.images)
    with transaction.atomic():
        locked = Screening.objects.select_for_update().get(pk=sid)
        if locked.status != Screening.Status.PROCESSING:
            # Finished by another delivery, or stopped by a consent withdrawal meanwhile.
            return (
                "withdrawn" if locked.status == Screening.Status.WITHDRAWN else "already_finished"
            )
        existing = set(EyeResult.objects.filter(screening_id=sid).values_list("eye", flat=True))
        EyeResult.objects.bulk_create(
            EyeResult(
                screening_id=sid,
                eye=eye,
                probabilities=pred.probabilities,
                quality=pred.quality.to_dict() if pred.quality is not None else {},
                top_class=pred.top_class,
                findings=outcome.eye_findings.get(eye, []),  # type: ignore[attr-defined]
                heatmap_path=heatmaps.get(eye, ""),
                heatmap_class=(pred.heatmap_class or "") if eye in heatmaps else "",
                model_version=pred.model_version,
            )
            for eye, pred in prediction.predictions.items()
            if eye not in existing
        )
        locked.status = Screening.Status.COMPLETED if gradable else Screening.Status.UNGRADABLE
        locked.triage = outcome.triage  # type: ignore[attr-defined]
        locked.reasons = outcome.reasons  # type: ignore[attr-defined]
        locked.findings = outcome.findings  # type: ignore[attr-defined]
        locked.model_version = prediction.version
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
        # The next due date is set with the result, in the same transaction (screening.recall).
        patient_recall_refresh(patient_id=locked.patient_id)
        transaction.on_commit(lambda: screening_trigger_downstream(screening_id=sid))
    return "completed"


def screening_run_inference(*, screening_id: int) -> str:
    """Run the ensemble on a queued screening (and any others waiting) and store the results.

    Idempotent: a redelivered or duplicated task finds the screening finished (or claims it again
    after a worker died mid-way) and never stores a second result (one_result_per_eye) or a second
    downstream record. Returns what happened to *this* screening, for logs and tests."""
    if not _claim(screening_id):
        screening = Screening.objects.filter(pk=screening_id).first()
        if screening is None:
            return "missing"
        if screening.status == Screening.Status.WITHDRAWN:
            return "withdrawn"
        if screening.is_finished:
            return "already_finished"
        if Patient.objects.filter(
            pk=screening.patient_id, consent_withdrawn_at__isnull=False
        ).exists():
            # Withdrawn between the queueing and this delivery, before the withdrawal's own
            # update reached this row: stop it here rather than fail it.
            Screening.objects.filter(pk=screening_id, status__in=consent.PENDING).update(
                status=Screening.Status.WITHDRAWN, error="consent withdrawn"
            )
            return "withdrawn"
        screening_mark_failed(
            screening_id=screening_id, error="too many attempts (worker crashed or task failed)"
        )
        return "failed"
    partners = _claim_queued(exclude=screening_id, limit=settings.SCREENING_BATCH_SIZE - 1)
    try:
        preds = screenings_predict(screening_ids=[screening_id, *partners])
    except Exception:
        if not partners:
            raise
        # One partner's unreadable photo must not fail the others: run this screening alone.
        # The partners stay claimed; their own deliveries (still queued) take them again.
        logger.warning("batch of %s failed; retrying screening %s alone", partners, screening_id)
        partners = []
        preds = screenings_predict(screening_ids=[screening_id])
    status = "missing"
    for pred in preds:
        done = screening_store_result(prediction=pred)
        if pred.screening_id == screening_id:
            status = done
    if partners:
        logger.info("screening %s ran in a batch with %s", screening_id, partners)
    return status


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
