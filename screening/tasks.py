from celery import shared_task
from celery.utils.log import get_task_logger

logger = get_task_logger(__name__)


# acks_late + reject_on_worker_lost: a worker killed mid-inference leaves the message to be
# redelivered, which is safe only because screening_run_inference is idempotent (conditional
# claim, one result per eye, a locked final write). The soft limit sits far below the broker's
# visibility timeout (900 s) so that a slow but healthy task is never delivered twice.
@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=150,
    max_retries=None,
)
def screening_infer(self, screening_id: int) -> str:
    from django.conf import settings

    from screening.models import Screening
    from screening.services import screening_mark_failed, screening_run_inference

    try:
        return screening_run_inference(screening_id=screening_id)
    except Exception as exc:
        # The claim counted this attempt; the database, not Celery's retry counter, decides when
        # to stop, so crashes (which Celery never sees) and exceptions share one budget.
        attempts = (
            Screening.objects.filter(pk=screening_id).values_list("attempts", flat=True).first()
            or 0
        )
        logger.exception("inference of screening %s failed (attempt %s)", screening_id, attempts)
        if attempts >= settings.SCREENING_MAX_ATTEMPTS:
            screening_mark_failed(screening_id=screening_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=min(60, 5 * 2**attempts)) from exc


@shared_task(acks_late=True, soft_time_limit=60)
def screening_sweep_stuck() -> dict:
    from screening.services import screening_sweep_stuck as sweep

    return sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300)
def recall_reminders_send() -> int:
    """Beat: text the patients whose rescreen is due within RECALL_REMINDER_DAYS_BEFORE days."""
    # Safe to run twice or concurrently: each reminder's dedupe key (patient, due date) is unique
    # in OutboundMessage, so a second run sends nothing already sent.
    from screening.recall import recall_reminders_send as send

    return send()


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def images_purge() -> dict:
    """Beat, nightly: delete the photo files past IMAGE_RETENTION_DAYS (idempotent)."""
    from django.conf import settings

    from screening.consent import images_purge_older_than

    if settings.IMAGE_RETENTION_DAYS <= 0:
        return {"photos": 0, "heatmaps": 0}
    return images_purge_older_than(days=settings.IMAGE_RETENTION_DAYS)
