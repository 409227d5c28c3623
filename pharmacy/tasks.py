from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def prescription_propose_for_screening(screening_id: int) -> None:
    """Propose medication for a completed screening (implemented by the pharmacy service)."""
    from pharmacy.services import prescription_propose_for_screening as propose

    propose(screening_id=screening_id)
