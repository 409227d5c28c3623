"""Pharmacy's part when a screening's result of record changes (a grader's final read): sent by
name from ``settings.SCREENING_RESULT_CHANGED_TASKS``; imported from ``PharmacyConfig.ready`` so
that the worker registers it (Celery discovers only ``tasks.py``)."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def prescription_follow_result_of_record(screening_id: int) -> str:
    """Withdraw a pending prescription the final read no longer supports (and alert the pharmacist
    about a decided one), or propose medication that the final read calls for."""
    # Safe to run twice: a withdrawn prescription is no longer pending (checked under its row
    # lock), a decided one is flagged once per result, and the proposal is one per screening.
    from pharmacy.services.result import prescription_follow_result_of_record as follow

    return follow(screening_id=screening_id)
