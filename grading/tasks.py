from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=30, time_limit=45)
def grading_case_open(screening_id: int) -> None:
    """A screening finished: open its grading case when the rules want a person to read it."""
    # Safe to run twice: the case is one-to-one with the screening; a second run returns it.
    from grading.services import grading_case_open as case_open

    case_open(screening_id=screening_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300)
def grading_cases_escalate() -> dict:
    """Beat: tell the reading centres about cases past their turnaround target, once each."""
    # Safe to run twice or concurrently: each case is claimed by a conditional UPDATE on
    # escalated_at IS NULL, and the messages carry a per-case dedupe key.
    from grading.services import grading_cases_escalate_overdue

    return grading_cases_escalate_overdue()
