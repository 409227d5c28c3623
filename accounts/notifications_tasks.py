"""The notification email task. Loaded by every worker through CELERY_IMPORTS (accounts has no
tasks.py of its own)."""

from celery import shared_task


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=30,
    time_limit=60,
    max_retries=3,
    default_retry_delay=60,
)
def notification_email_send(self, notification_id: int) -> None:
    # Safe to redeliver: the service claims the email with a conditional UPDATE and sends it only
    # if this delivery won the claim.
    from accounts.notifications import EmailDeliveryFailed, notification_email_deliver

    try:
        notification_email_deliver(
            notification_id=notification_id,
            final_attempt=self.request.retries >= self.max_retries,
        )
    except EmailDeliveryFailed as exc:
        raise self.retry(exc=exc) from exc
