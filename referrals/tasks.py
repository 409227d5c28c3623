from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def referral_propose_for_screening(screening_id: int) -> None:
    """Propose a referral with ranked hospitals for a referable screening."""
    # Safe to run twice: the service returns the existing referral, and the partial unique
    # constraint on active referrals stops two concurrent deliveries from both inserting.
    from referrals.services import referral_propose_for_screening as propose

    propose(screening_id=screening_id)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=30,
    time_limit=45,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def referral_notify_patient(event_id: int) -> None:
    """Text the patient about one referral event."""
    # Safe to run twice: message_send's dedupe key is per event.
    from referrals.services import referral_event_notify

    referral_event_notify(event_id=event_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300)
def referrals_escalate() -> None:
    """Beat: re-route referrals that a hospital left unanswered for too long."""
    # Safe to run twice or concurrently: each referral is re-checked under SELECT FOR UPDATE and
    # its sent_at restarts the clock once re-routed.
    from referrals.services import referrals_escalate_overdue

    referrals_escalate_overdue()
