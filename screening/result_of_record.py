"""The result of record: the reading of a screening that counts once a person has read it.

The AI's result (``Screening.triage`` and ``findings``, the ``EyeResult`` rows) is never
overwritten. A person's final read is stored beside it, in the ``final_*`` fields, by
:func:`screening_result_of_record_set`; the field performance of the model is the comparison of
the two, per screening, site and model version. Once the new result is committed, the tasks named
in ``settings.SCREENING_RESULT_CHANGED_TASKS`` are sent by name (as ``SCREENING_COMPLETED_TASKS``
are), so that the apps that act on a result (a referral to withdraw or to start) follow it while
screening knows none of them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import Conflict, InvalidInput, NotFound
from screening.models import CLASS_CODES, ResultSource, Screening, Triage
from screening.recall import patient_recall_refresh

logger = logging.getLogger("eyebridge.screening")

REFERABLE_TRIAGE = frozenset({Triage.REFERABLE, Triage.URGENT, Triage.UNGRADABLE})
# What a result of record may name as findings: the disease classes ("N" is their absence).
FINDING_CODES = tuple(c for c in CLASS_CODES if c != "N")


def is_referable(triage: str) -> bool:
    """The refer question every read answers: see an eye doctor (referable, urgent, or not
    gradable: examined in person) or not (normal, medication)."""
    return triage in REFERABLE_TRIAGE


@dataclass(frozen=True)
class ResultOfRecord:
    """What counts for a screening now, and who settled it (``source`` "ai": nobody yet)."""

    triage: str
    findings: list[str]
    source: str
    by_id: int | None
    at: dt.datetime | None

    @property
    def is_referable(self) -> bool:
        return is_referable(self.triage)


def result_of_record(screening: Screening) -> ResultOfRecord:
    if screening.final_source:
        return ResultOfRecord(
            triage=screening.final_triage,
            findings=list(screening.final_findings),
            source=screening.final_source,
            by_id=screening.final_by_id,
            at=screening.final_at,
        )
    return ResultOfRecord(
        triage=screening.triage,
        findings=list(screening.findings),
        source=ResultSource.AI,
        by_id=None,
        at=screening.completed_at,
    )


def _read_only(*args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError("a screening_of_record() instance carries the result of record: never save it")


def screening_of_record(*, screening_id: int) -> Screening | None:
    """The screening (with its patient and site) as code that acts on its result should see it:
    ``triage`` and ``findings`` hold the result of record, the AI's where no person has read it.

    For the apps downstream that decide from those two attributes (a referral's urgency and
    specialties). The row itself is untouched, and the instance refuses ``save()``, so the AI's
    columns can never be overwritten with the final read through it."""
    screening = Screening.objects.select_related("patient", "site").filter(pk=screening_id).first()
    if screening is None:
        return None
    if screening.final_source:
        screening.triage = screening.final_triage
        screening.findings = list(screening.final_findings)
    screening.save = _read_only  # type: ignore[method-assign]
    return screening


def _clean_findings(findings: Iterable[str]) -> list[str]:
    found = set()
    for code in findings:
        if code not in FINDING_CODES:
            raise InvalidInput(
                _("Unknown finding: %(code)s.") % {"code": repr(str(code)[:10])},
                code="unknown_finding",
                field="findings",
            )
        found.add(code)
    return [c for c in FINDING_CODES if c in found]


def screening_result_of_record_set(
    *,
    screening_id: int,
    triage: str,
    findings: Iterable[str],
    source: str,
    by_user_id: int | None,
) -> Screening:
    """Make this the screening's result of record and, after commit, tell the apps downstream.

    Holds SELECT FOR UPDATE on the screening while it writes, so two final reads of the same
    screening are applied one after the other, never interleaved. The AI's triage, findings and
    eye results are not touched. Calling it again with the same result writes the same values and
    sends the tasks again, which are idempotent: safe to repeat."""
    if triage not in Triage.values:
        raise InvalidInput(_("Unknown next step."), code="unknown_triage", field="triage")
    if source not in ResultSource.values:
        raise InvalidInput(_("Unknown source."), code="unknown_source", field="source")
    if source == ResultSource.GRADER and by_user_id is None:
        raise InvalidInput(_("A grader's result names the grader."), field="by_user_id")
    clean = _clean_findings(findings)
    with transaction.atomic():
        screening = Screening.objects.select_for_update().filter(pk=screening_id).first()
        if screening is None:
            raise NotFound(_("Screening not found."))
        if screening.status not in (Screening.Status.COMPLETED, Screening.Status.UNGRADABLE):
            raise Conflict(
                _("The screening has no result yet."), code="not_finished", field="screening"
            )
        screening.final_triage = triage
        screening.final_findings = clean
        screening.final_source = source
        screening.final_by_id = by_user_id
        screening.final_at = timezone.now()
        screening.save(
            update_fields=["final_triage", "final_findings", "final_source", "final_by", "final_at"]
        )
        # The due date follows the result of record (screening.recall), committed with it.
        patient_recall_refresh(patient_id=screening.patient_id)
        transaction.on_commit(lambda: screening_trigger_result_changed(screening_id=screening_id))
    return screening


def screening_trigger_result_changed(*, screening_id: int) -> None:
    """Send each task of ``SCREENING_RESULT_CHANGED_TASKS`` the screening's id.

    The result is committed by now. A broker that cannot take the message must not lose the
    downstream step (an urgent referral to start): the task then runs here, in-process, as
    referrals does for its patient messages. The tasks are idempotent, so a message that did
    reach the broker after all only repeats the step."""
    from config.celery import app

    for name in settings.SCREENING_RESULT_CHANGED_TASKS:
        try:
            app.send_task(name, args=[screening_id])
        except Exception:
            logger.exception(
                "could not enqueue %s for screening %s; running it here", name, screening_id
            )
            task = app.tasks.get(name)
            if task is not None:
                task.apply(args=[screening_id])
