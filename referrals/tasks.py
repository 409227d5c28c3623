from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def referral_propose_for_screening(screening_id: int) -> None:
    """Propose a referral with ranked hospitals for a referable screening."""
    from referrals.services import referral_propose_for_screening as propose

    propose(screening_id=screening_id)
