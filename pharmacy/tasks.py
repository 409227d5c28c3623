"""Celery tasks of the pharmacy app. Each takes ids, is safe to run twice, and calls one service."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def prescription_propose_for_screening(screening_id: int) -> None:
    """Propose medication for a completed screening (implemented by the pharmacy service)."""
    # Safe to redeliver: one rule-proposed prescription per screening (a unique constraint).
    from pharmacy.services import prescription_propose_for_screening as propose

    propose(screening_id=screening_id)


@shared_task(
    acks_late=True, reject_on_worker_lost=True, soft_time_limit=30, time_limit=60, max_retries=3
)
def prescription_send_code(prescription_id: int) -> None:
    # Safe to redeliver: the message's dedupe key is the code, so the patient gets one text.
    from pharmacy.services import prescription_send_code as send

    send(prescription_id=prescription_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def dispenses_release_stale() -> None:
    # Safe to overlap: each reservation is released under its row locks, at most once.
    from pharmacy.services import dispenses_release_stale as release

    release()


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def prescriptions_expire() -> None:
    # Safe to overlap: rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED; the purge of old
    # idempotency records rides along (a plain DELETE by age, harmless twice).
    from pharmacy.services import idempotency_records_purge, prescriptions_expire

    prescriptions_expire()
    idempotency_records_purge()


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def pharmacy_alerts_check() -> None:
    # Safe to overlap: an alert is raised under the unique index on open alerts (one INSERT wins,
    # one set of notifications) and resolved by a conditional UPDATE.
    from pharmacy.alerts import pharmacy_alerts_check as check

    check()
