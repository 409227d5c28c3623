"""Writes of grading: open a case when a screening finishes, record reads, settle the result of
record, escalate overdue cases.

The read rule (the NHS Diabetic Eye Screening Programme's, on the refer question: see an eye
doctor or not):
* the primary read agrees with the AI -> it is final;
* it disagrees -> a second grader (another person) reads;
* the second read agrees with the first -> final; disagrees -> a third grader, neither of the
  two, arbitrates, and that read is final.
The final read becomes the screening's result of record (screening.result_of_record), which
the apps downstream follow (a referral withdrawn or started).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import AdminAlert, User
from config.errors import Conflict, Forbidden, InvalidInput
from grading import selectors
from grading.models import (
    ROLE_FOR_STAGE,
    CaseEvent,
    CaseReason,
    CaseStage,
    DrGrade,
    EyeRead,
    GraderRead,
    GradingCase,
    ReadRole,
)
from screening.models import CLASS_CODES, ResultSource, Screening, Triage
from screening.result_of_record import FINDING_CODES, is_referable
from screening.services import screening_result_of_record_set

logger = logging.getLogger("eyebridge.grading")
MAX_NOTE = 2000


# --- opening a case --------------------------------------------------------------------------
def grading_case_open(*, screening_id: int) -> GradingCase | None:
    """Open the screening's case when the rules want a person to read it (grading.selectors.
    grading_reason); None when they do not.

    Idempotent: the one-to-one on the screening lets a redelivered task, or two at once, open
    one case; the second finds it and returns it."""
    screening = Screening.objects.filter(pk=screening_id).first()
    if screening is None:
        return None
    existing = GradingCase.objects.filter(screening_id=screening_id).first()
    if existing is not None:
        return existing
    reason = selectors.grading_reason(screening=screening)
    if reason is None:
        return None
    urgent = screening.triage == Triage.URGENT
    now = timezone.now()
    try:
        with transaction.atomic():
            case = GradingCase.objects.create(
                screening=screening,
                reason=reason,
                sample_rate=settings.GRADING_NORMAL_SAMPLE_RATE
                if reason == CaseReason.SAMPLE
                else None,
                ai_triage=screening.triage,
                ai_refer=is_referable(screening.triage),
                urgent=urgent,
                opened_at=now,
                due_at=now + selectors.turnaround(urgent=urgent),
            )
            CaseEvent.objects.create(case=case, kind=CaseEvent.Kind.OPENED, note=reason)
    except IntegrityError:
        return GradingCase.objects.filter(screening_id=screening_id).first()
    return case


# --- reads ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EyeReadInput:
    eye: str
    gradable: bool
    findings: Sequence[str] = ()
    dr_grade: str = ""


@dataclass(frozen=True)
class ReadInput:
    eyes: Sequence[EyeReadInput]
    next_step: str
    note: str = ""


@dataclass
class _CleanEye:
    eye: str
    gradable: bool
    findings: list[str] = field(default_factory=list)
    dr_grade: str = ""


def _clean_eye(value: EyeReadInput) -> _CleanEye:
    prefix = f"eyes.{value.eye}"
    unknown = [c for c in value.findings if c not in CLASS_CODES]
    if unknown:
        raise InvalidInput(
            _("Unknown finding: %(code)s.") % {"code": repr(str(unknown[0])[:10])},
            code="unknown_finding",
            field=f"{prefix}.findings",
        )
    findings = [c for c in CLASS_CODES if c in set(value.findings)]
    if "N" in findings and len(findings) > 1:
        raise InvalidInput(
            _("Normal cannot go with a finding in the same eye."),
            code="normal_with_finding",
            field=f"{prefix}.findings",
        )
    if value.dr_grade and value.dr_grade not in DrGrade.values:
        raise InvalidInput(
            _("Unknown diabetic retinopathy grade."),
            code="unknown_dr_grade",
            field=f"{prefix}.dr_grade",
        )
    if not value.gradable:
        if findings or value.dr_grade:
            raise InvalidInput(
                _("An eye that cannot be graded has no findings or grade."),
                code="ungradable_with_findings",
                field=f"{prefix}.findings",
            )
        return _CleanEye(eye=value.eye, gradable=False)
    if "D" in findings and value.dr_grade in ("", DrGrade.NONE):
        raise InvalidInput(
            _("Give the diabetic retinopathy grade (mild to proliferative)."),
            code="dr_grade_required",
            field=f"{prefix}.dr_grade",
        )
    if "D" not in findings and value.dr_grade not in ("", DrGrade.NONE):
        raise InvalidInput(
            _("A diabetic retinopathy grade needs diabetic retinopathy among the findings."),
            code="dr_grade_without_d",
            field=f"{prefix}.dr_grade",
        )
    return _CleanEye(eye=value.eye, gradable=True, findings=findings, dr_grade=value.dr_grade)


def _clean_read(data: ReadInput, *, photographed: set[str]) -> tuple[list[_CleanEye], str, str]:
    eyes: dict[str, _CleanEye] = {}
    for value in data.eyes:
        if value.eye not in photographed:
            raise InvalidInput(
                _("This screening has no photo of that eye."), code="no_photo", field="eyes"
            )
        if value.eye in eyes:
            raise InvalidInput(_("Each eye is read once."), code="duplicate_eye", field="eyes")
        eyes[value.eye] = _clean_eye(value)
    missing = photographed - set(eyes)
    if missing:
        raise InvalidInput(
            _("Read every photographed eye."),
            code="eye_missing",
            field="eyes",
            details={"missing": sorted(missing)},
        )
    if data.next_step not in Triage.values:
        raise InvalidInput(_("Choose the next step."), code="unknown_next_step", field="next_step")
    note = (data.note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(_("At most %(n)d characters.") % {"n": MAX_NOTE}, field="note")
    if "\x00" in note:
        raise InvalidInput(_("Text contains a NUL character."), field="note")
    return [eyes[e] for e in sorted(eyes)], data.next_step, note


def _next_stage(case: GradingCase, read: GraderRead) -> str:
    """Where the case goes after this read (the rule in the module docstring)."""
    if read.role == ReadRole.PRIMARY:
        return CaseStage.FINAL if read.refer == case.ai_refer else CaseStage.SECONDARY
    if read.role == ReadRole.SECONDARY:
        primary = case.reads.get(role=ReadRole.PRIMARY)
        return CaseStage.FINAL if read.refer == primary.refer else CaseStage.ARBITRATION
    return CaseStage.FINAL


def grader_read_submit(
    *, user: User, screening_id: int, data: ReadInput, stage: str | None = None
) -> GraderRead:
    """Record a grader's read of the screening's case and move the case on; when this read is
    final, make it the screening's result of record.

    Holds SELECT FOR UPDATE on the case while it decides which read this is: of two graders who
    submit the first read at the same moment, the second waits, then finds the case moved on
    (409 when it says which ``stage`` it read for, as the portal does; otherwise its read is
    the next one the case needs, which is still independent of the first). The unique
    constraints (one read per role, one per grader) back the lock up in the database. A grader
    who read the case already is refused (403): the second reader and the arbitrator are
    other people."""
    case = selectors.case_get(user=user, screening_id=screening_id)
    if not selectors.is_grader(user=user):
        raise Forbidden(_("Only a grader of a reading centre can record a read."))
    photographed = {image.eye for image in case.screening.images.all()}
    eyes, next_step, note = _clean_read(data, photographed=photographed)
    findings = [c for c in FINDING_CODES if any(c in e.findings for e in eyes)]
    with transaction.atomic():
        locked = GradingCase.objects.select_for_update().get(pk=case.pk)
        if stage is not None and stage != locked.stage:
            raise Conflict(
                _("Someone else read this case meanwhile; open it again."),
                code="stage_changed",
                details={"stage": locked.stage},
            )
        if locked.stage == CaseStage.FINAL:
            raise Conflict(_("This case is already final."), code="case_final")
        if locked.reads.filter(grader=user).exists():
            raise Forbidden(
                _("You have read this case already: another grader must read it."),
                code="already_read",
            )
        try:
            with transaction.atomic():
                read = GraderRead.objects.create(
                    case=locked,
                    grader=user,
                    role=ROLE_FOR_STAGE[locked.stage],
                    next_step=next_step,
                    refer=is_referable(next_step),
                    findings=findings,
                    note=note,
                )
        except IntegrityError:
            raise Conflict(
                _("Someone else read this case meanwhile; open it again."), code="stage_changed"
            ) from None
        EyeRead.objects.bulk_create(
            EyeRead(
                read=read,
                eye=e.eye,
                gradable=e.gradable,
                findings=e.findings,
                dr_grade=e.dr_grade,
            )
            for e in eyes
        )
        CaseEvent.objects.create(case=locked, kind=CaseEvent.Kind.READ, read=read, actor=user)
        _advance(locked, read, user=user)
    return read


def _advance(case: GradingCase, read: GraderRead, *, user: User) -> None:
    """Move the case to its next stage after ``read``. Call while holding the case's row lock."""
    stage = _next_stage(case, read)
    if stage != CaseStage.FINAL:
        case.stage = stage
        case.save(update_fields=["stage"])
        kind = (
            CaseEvent.Kind.SECOND_READ
            if stage == CaseStage.SECONDARY
            else CaseEvent.Kind.ARBITRATION
        )
        CaseEvent.objects.create(case=case, kind=kind, read=read)
        return
    case.stage = CaseStage.FINAL
    case.final_read = read
    case.final_refer = read.refer
    case.closed_at = timezone.now()
    case.save(update_fields=["stage", "final_read", "final_refer", "closed_at"])
    CaseEvent.objects.create(case=case, kind=CaseEvent.Kind.FINAL, read=read, actor=user)
    screening_result_of_record_set(
        screening_id=case.screening_id,
        triage=read.next_step,
        findings=read.findings,
        source=ResultSource.GRADER,
        by_user_id=user.pk,
    )


# --- escalation ----------------------------------------------------------------------------
def grading_case_escalate(*, case_id: int, now: dt.datetime | None = None) -> bool:
    """Escalate one overdue case, once: a conditional UPDATE on ``escalated_at IS NULL`` claims
    it (two beats running together cannot both escalate it), then the reading centres are told
    after commit. Returns whether this call escalated it."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = (
            GradingCase.objects.filter(pk=case_id, escalated_at__isnull=True, due_at__lte=now)
            .exclude(stage=CaseStage.FINAL)
            .update(escalated_at=now)
        )
        if not claimed:
            return False
        CaseEvent.objects.create(case_id=case_id, kind=CaseEvent.Kind.ESCALATED)
        transaction.on_commit(lambda: grading_case_notify_overdue(case_id=case_id))
    return True


def grading_case_notify_overdue(*, case_id: int) -> int:
    """Text each reading centre that reads for the case's site (its duty phone); with no centre
    to reach, alert an administrator. Idempotent: the message's dedupe key is per case and
    centre, and there is one open alert per case. Returns the number of messages sent."""
    from accounts.messaging import message_send

    case = GradingCase.objects.filter(pk=case_id).first()
    if case is None:
        return 0
    values = {"case": case.pk, "screening": case.screening_id}
    with translation.override(settings.LANGUAGE_CODE):
        if case.urgent:
            body = (
                _(
                    "EyeBridge: urgent grading case %(case)s (screening %(screening)s) is overdue. "
                    "Please read it in the reading queue now."
                )
                % values
            )
        else:
            body = (
                _(
                    "EyeBridge: grading case %(case)s (screening %(screening)s) is overdue. Please "
                    "read it in the reading queue."
                )
                % values
            )
    centres = [
        c for c in selectors.centres_for_screening(screening_id=case.screening_id) if c.phone
    ]
    sent = 0
    for centre in centres:
        message = message_send(
            to=centre.phone,
            body=body,
            topic="grading_overdue",
            dedupe_key=f"grading-overdue:{case.pk}:{centre.pk}",
        )
        sent += message is not None
    if not centres:
        try:
            with transaction.atomic():
                AdminAlert.objects.create(
                    kind="grading_overdue",
                    object_ref=f"grading_case:{case.pk}",
                    message=f"Grading case {case.pk} (screening {case.screening_id}) is overdue "
                    "and no reading centre with a phone reads for its site.",
                )
        except IntegrityError:  # one open alert per case is enough
            pass
    return sent


def grading_cases_escalate_overdue(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat task's body: escalate every overdue case once; safe to run concurrently."""
    now = now or timezone.now()
    counts = {"escalated": 0, "skipped": 0}
    for case_id in selectors.cases_overdue(now=now):
        counts["escalated" if grading_case_escalate(case_id=case_id, now=now) else "skipped"] += 1
    return counts
