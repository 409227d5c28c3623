"""Human grading: reading centres, their graders, the cases to read and the reads.

A grader's read is stored beside the AI's result, never over it (``screening.EyeResult`` and the
screening's own triage stay as the model left them); the final read becomes the screening's
result of record through ``screening.result_of_record``. For the field-performance figures, the
AI's answer to the refer question (``GradingCase.ai_refer``) and the final human one
(``GradingCase.final_refer``) sit on the same row, next to why the case was read (``reason``: a
random sample of normal results carries the rate it was drawn at).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from screening.models import CLASS_NAMES, Eye, Screening, Site, Triage


class ReadingCentre(models.Model):
    """A reading centre, or the grading desk of a partner hospital: its graders read the
    screenings of the sites it reads for, and nothing else."""

    name = models.CharField(_("name"), max_length=200)
    name_en = models.CharField(_("English name"), max_length=200, blank=True)
    sites = models.ManyToManyField(
        Site, related_name="reading_centres", blank=True, verbose_name=_("sites read for")
    )
    # The partner hospital whose eye doctors grade here, when it is one: referrals.Hospital's id,
    # not a foreign key (grading sits beside referrals, not above it).
    partner_hospital_id = models.PositiveIntegerField(
        _("partner hospital (id)"), null=True, blank=True
    )
    # The centre's duty phone: where an overdue case is escalated (accounts.messaging).
    phone = models.CharField(_("phone"), max_length=32, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("reading centre")
        verbose_name_plural = _("reading centres")

    def __str__(self) -> str:
        return self.name


class GraderMembership(models.Model):
    """A grader reads for exactly one reading centre: the scope of everything they see."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="grader_membership",
        verbose_name=_("grader"),
    )
    centre = models.ForeignKey(
        ReadingCentre,
        on_delete=models.PROTECT,
        related_name="memberships",
        verbose_name=_("reading centre"),
    )

    class Meta:
        verbose_name = _("grader membership")
        verbose_name_plural = _("grader memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.centre}"


class CaseStage(models.TextChoices):
    PRIMARY = "primary", _("Awaiting the first read")
    SECONDARY = "secondary", _("Awaiting a second read")
    ARBITRATION = "arbitration", _("Awaiting arbitration")
    FINAL = "final", _("Final")


OPEN_STAGES = (CaseStage.PRIMARY, CaseStage.SECONDARY, CaseStage.ARBITRATION)
# The stage a read is made for (the API's ``stage``, the portal's hidden field).
OPEN_STAGE_CHOICES = [(s.value, s.label) for s in OPEN_STAGES]


class CaseReason(models.TextChoices):
    """Why a screening is read by a person (grading.selectors.grading_reason)."""

    REFERABLE = "referable", _("The AI referred the patient")
    URGENT = "urgent", _("The AI called it urgent")
    UNGRADABLE = "ungradable", _("The AI could not grade the photos")
    SAMPLE = "sample", _("Random sample of results the AI did not refer")


class GradingCase(models.Model):
    """One screening to be read by people, from the first read to the final one."""

    # One case per screening: a redelivered completion task cannot open a second one.
    screening = models.OneToOneField(
        Screening,
        on_delete=models.PROTECT,
        related_name="grading_case",
        verbose_name=_("screening"),
    )
    reason = models.CharField(_("reason"), max_length=12, choices=CaseReason.choices)
    # The share of non-referred results sampled when this one was drawn (reason "sample"): the
    # weight a specificity estimate needs once the rate has changed over time.
    sample_rate = models.FloatField(_("sample rate"), null=True, blank=True)
    # The AI's answers when the case opened, copied so the queue and the figures need no join.
    ai_triage = models.CharField(_("AI triage"), max_length=12, choices=Triage.choices)
    ai_refer = models.BooleanField(_("AI referred"))
    urgent = models.BooleanField(_("urgent"), default=False)
    stage = models.CharField(
        _("stage"),
        max_length=12,
        choices=CaseStage.choices,
        default=CaseStage.PRIMARY,
        db_index=True,
    )
    opened_at = models.DateTimeField(_("opened"), default=timezone.now)
    due_at = models.DateTimeField(_("due"))
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    final_read = models.OneToOneField(
        "GraderRead",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("final read"),
    )
    # The final human answer to the refer question (None while open).
    final_refer = models.BooleanField(_("referred in the end"), null=True, blank=True)

    class Meta:
        ordering = ["-urgent", "opened_at", "id"]
        verbose_name = _("grading case")
        verbose_name_plural = _("grading cases")
        indexes = [
            # The reading queue: open cases, urgent first, then oldest.
            models.Index(
                fields=["-urgent", "opened_at"],
                condition=~Q(stage="final"),
                name="grading_open_queue",
            ),
            # The escalation sweep: open, not yet escalated, by due time.
            models.Index(
                fields=["due_at"],
                condition=~Q(stage="final") & Q(escalated_at__isnull=True),
                name="grading_due_unescalated",
            ),
        ]
        constraints = [
            # A case is final exactly when it has a final read and an answer.
            models.CheckConstraint(
                condition=(
                    Q(stage="final")
                    & Q(
                        closed_at__isnull=False, final_read__isnull=False, final_refer__isnull=False
                    )
                )
                | (
                    ~Q(stage="final")
                    & Q(closed_at__isnull=True, final_read__isnull=True, final_refer__isnull=True)
                ),
                name="grading_case_final_is_whole",
            ),
            models.CheckConstraint(
                condition=Q(due_at__gte=models.F("opened_at")), name="grading_case_due_after_open"
            ),
            models.CheckConstraint(
                condition=~Q(reason="sample") | Q(sample_rate__isnull=False),
                name="grading_sample_has_rate",
            ),
        ]

    def __str__(self) -> str:
        return _("Grading case %(id)s: %(reason)s (%(stage)s)") % {
            "id": self.pk,
            "reason": self.get_reason_display(),
            "stage": self.get_stage_display(),
        }

    @property
    def is_open(self) -> bool:
        return self.stage != CaseStage.FINAL

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at <= timezone.now()


class ReadRole(models.TextChoices):
    PRIMARY = "primary", _("Primary read")
    SECONDARY = "secondary", _("Second read")
    ARBITRATION = "arbitration", _("Arbitration")


# The read a case at each open stage is waiting for.
ROLE_FOR_STAGE: dict[str, str] = {
    CaseStage.PRIMARY: ReadRole.PRIMARY,
    CaseStage.SECONDARY: ReadRole.SECONDARY,
    CaseStage.ARBITRATION: ReadRole.ARBITRATION,
}


class DrGrade(models.TextChoices):
    """The International Clinical Diabetic Retinopathy severity scale."""

    NONE = "none", _("No apparent retinopathy")
    MILD = "mild", _("Mild non-proliferative")
    MODERATE = "moderate", _("Moderate non-proliferative")
    SEVERE = "severe", _("Severe non-proliferative")
    PDR = "pdr", _("Proliferative")


class GraderRead(models.Model):
    """One grader's read of a case: per eye (EyeRead), then the next step for the patient."""

    case = models.ForeignKey(
        GradingCase, on_delete=models.PROTECT, related_name="reads", verbose_name=_("grading case")
    )
    grader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("grader"),
    )
    role = models.CharField(_("read"), max_length=12, choices=ReadRole.choices)
    next_step = models.CharField(_("next step"), max_length=12, choices=Triage.choices)
    # next_step's answer to the refer question (screening.result_of_record.is_referable).
    refer = models.BooleanField(_("refer"))
    # The disease classes found in either eye (the union of the eye reads, in class order).
    findings = models.JSONField(_("findings"), default=list, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("grader's read")
        verbose_name_plural = _("grader's reads")
        constraints = [
            # Two graders submitting the first read at the same moment cannot both be the primary
            # (the service also holds the case's row lock; this is the database's word on it).
            models.UniqueConstraint(fields=["case", "role"], name="grading_one_read_per_role"),
            # The second reader and the arbitrator are other people than the earlier readers.
            models.UniqueConstraint(fields=["case", "grader"], name="grading_one_read_per_grader"),
        ]

    def __str__(self) -> str:
        return _("%(role)s by %(grader)s (case %(case)s)") % {
            "role": self.get_role_display(),
            "grader": self.grader,
            "case": self.case_id,
        }


class EyeRead(models.Model):
    read = models.ForeignKey(
        GraderRead, on_delete=models.CASCADE, related_name="eyes", verbose_name=_("grader's read")
    )
    eye = models.CharField(_("eye"), max_length=5, choices=Eye.choices)
    gradable = models.BooleanField(_("gradable"))
    # Class letters of the 8 classes ("N" alone: nothing found); empty when not gradable.
    findings = models.JSONField(_("findings"), default=list, blank=True)
    # Required when D is among the findings (grading.services checks it).
    dr_grade = models.CharField(
        _("diabetic retinopathy grade"), max_length=8, choices=DrGrade.choices, blank=True
    )

    class Meta:
        ordering = ["eye"]
        verbose_name = _("read of one eye")
        verbose_name_plural = _("reads of one eye")
        constraints = [
            models.UniqueConstraint(fields=["read", "eye"], name="grading_one_eye_read_per_eye"),
            models.CheckConstraint(
                condition=Q(gradable=True) | Q(dr_grade=""), name="grading_ungradable_no_dr_grade"
            ),
        ]

    def __str__(self) -> str:
        if not self.gradable:
            found = str(_("ungradable"))
        else:
            found = ", ".join(str(CLASS_NAMES.get(c, c)) for c in self.findings or []) or "-"
        return f"{self.get_eye_display()}: {found}"


class CaseEvent(models.Model):
    """The case's history: opened, each read, where it went next, escalations."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened for a read")
        READ = "read", _("Read recorded")
        SECOND_READ = "second_read", _("Sent for a second read")
        ARBITRATION = "arbitration", _("Sent to arbitration")
        FINAL = "final", _("Result of record set")
        ESCALATED = "escalated", _("Overdue: escalated to the reading centre")

    case = models.ForeignKey(
        GradingCase, on_delete=models.CASCADE, related_name="events", verbose_name=_("grading case")
    )
    kind = models.CharField(_("event"), max_length=12, choices=Kind.choices)
    read = models.ForeignKey(
        GraderRead,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("grader's read"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("by"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("grading case event")
        verbose_name_plural = _("grading case events")
        indexes = [models.Index(fields=["case", "created_at"])]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}" if self.created_at else "-"
        return f"{self.get_kind_display()} ({when})"
