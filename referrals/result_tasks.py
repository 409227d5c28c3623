"""The referral's part when a screening's result of record changes (a grader's final read):
sent by name from ``settings.SCREENING_RESULT_CHANGED_TASKS``; imported from
``ReferralsConfig.ready`` so that the worker registers it (Celery discovers only ``tasks.py``)."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def referral_follow_result_of_record(screening_id: int) -> str:
    """Withdraw an unsent proposal the final read no longer supports, or start one it needs."""
    # Safe to run twice: a withdrawn proposal is no longer "proposed" (the conditional UPDATE
    # misses), and the proposal service returns the referral a screening already has.
    from referrals.result_services import referral_follow_result_of_record as follow

    return follow(screening_id=screening_id)
