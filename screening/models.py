from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ml import CLASSES as CLASS_CODES

# The model's classes come from ml (one source); these are only their translated labels, and a
# class the model gains without a label here fails at import rather than showing a bare code.
CLASS_NAMES = {
    "N": _("Normal"),
    "D": _("Diabetic retinopathy"),
    "G": _("Glaucoma"),
    "C": _("Cataract"),
    "A": _("Age-related macular degeneration"),
    "H": _("Hypertensive retinopathy"),
    "M": _("Pathological myopia"),
    "O": _("Other abnormality"),
}
if set(CLASS_NAMES) != set(CLASS_CODES):
    raise RuntimeError(f"screening.models.CLASS_NAMES must label exactly ml.CLASSES {CLASS_CODES}")


class Site(models.Model):
    """A screening site: a community health centre where health workers photograph retinas."""

    name = models.CharField(_("name"), max_length=200)
    name_en = models.CharField(_("English name"), max_length=200, blank=True)
    region = models.CharField(_("region"), max_length=100, db_index=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("screening site")
        verbose_name_plural = _("screening sites")
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="site_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="site_longitude_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SiteMembership(models.Model):
    """A health worker works at exactly one site: it is the scope of everything they see."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="site_membership",
        verbose_name=_("user"),
    )
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="memberships", verbose_name=_("site")
    )

    class Meta:
        verbose_name = _("site membership")
        verbose_name_plural = _("site memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.site}"


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")
    OTHER = "O", _("Other / not stated")


def new_pseudonym() -> str:
    return "P-" + uuid.uuid4().hex[:10].upper()


def new_dicom_uid() -> str:
    """A DICOM UID under the UUID-derived root 2.25 (PS3.5 B.2): unique without a registered root.

    Random, never derived from the photo: three patients photographed with the same file must
    still be three studies, or a PACS merges them. 2.25. + at most 39 digits fits the 64-char limit.
    """
    return f"2.25.{uuid.uuid4().int}"


class Patient(models.Model):
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="patients", verbose_name=_("site")
    )
    # Shown on screens and exports instead of the name; stable for the patient's lifetime.
    pseudonym = models.CharField(
        _("patient code"), max_length=20, unique=True, default=new_pseudonym
    )
    name = models.CharField(_("name"), max_length=120)
    birth_date = models.DateField(_("birth date"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    phone = models.CharField(_("phone"), max_length=32, blank=True, db_index=True)
    region = models.CharField(_("region"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    home_latitude = models.FloatField(_("home latitude"), null=True, blank=True)
    home_longitude = models.FloatField(_("home longitude"), null=True, blank=True)
    has_diabetes = models.BooleanField(_("diabetes"), default=False)
    has_hypertension = models.BooleanField(_("hypertension"), default=False)
    family_history_glaucoma = models.BooleanField(_("family history of glaucoma"), default=False)
    high_myopia = models.BooleanField(_("high myopia"), default=False)
    allergies = models.TextField(_("allergies"), blank=True)
    medical_notes = models.TextField(_("other conditions and medicines"), blank=True)
    consent_given = models.BooleanField(_("consent to screening and data use"), default=False)
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("consent recorded by"),
    )
    consent_recorded_at = models.DateTimeField(_("consent recorded at"), null=True, blank=True)
    # The text the patient agreed to (screening.consent); the history is in ConsentEvent.
    consent_text = models.ForeignKey(
        "ConsentText",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("consent text"),
    )
    # Set once when the patient withdraws: no further processing of, or contact with, them.
    consent_withdrawn_at = models.DateTimeField(_("consent withdrawn"), null=True, blank=True)
    # Set once when the record was pseudonymised on the patient's request (screening.consent).
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("registered by"),
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        ordering = ["name", "birth_date"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        indexes = [models.Index(fields=["site", "name", "birth_date"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(home_latitude__isnull=True)
                | Q(home_latitude__gte=-90, home_latitude__lte=90),
                name="patient_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(home_longitude__isnull=True)
                | Q(home_longitude__gte=-180, home_longitude__lte=180),
                name="patient_longitude_range",
            ),
            # Screening without recorded consent is not allowed.
            models.CheckConstraint(condition=Q(consent_given=True), name="patient_consent_given"),
            # Erasure follows (or comes with) a withdrawal, never without one.
            models.CheckConstraint(
                condition=Q(erased_at__isnull=True) | Q(consent_withdrawn_at__isnull=False),
                name="patient_erased_after_withdrawal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pseudonym} {self.name}"

    @property
    def home_coordinates(self) -> tuple[float, float] | None:
        if self.home_latitude is None or self.home_longitude is None:
            return None
        return (self.home_latitude, self.home_longitude)


class Symptom(models.TextChoices):
    BLURRED_VISION = "blurred_vision", _("Blurred vision")
    SUDDEN_VISION_LOSS = "sudden_vision_loss", _("Sudden loss of vision")
    PAIN = "pain", _("Eye pain")
    REDNESS = "redness", _("Redness")
    ITCHING = "itching", _("Itching")
    DRYNESS = "dryness", _("Dryness / gritty feeling")
    FLOATERS = "floaters", _("Floaters or flashes")
    GLARE = "glare", _("Glare / halos")
    DISCHARGE = "discharge", _("Discharge")


class Triage(models.TextChoices):
    NORMAL = "normal", _("Normal: rescreen in 12 months")
    MEDICATION = "medication", _("Non-referable: medication suggested")
    REFERABLE = "referable", _("Referable: routine referral")
    URGENT = "urgent", _("Urgent referral")
    UNGRADABLE = "ungradable", _("Ungradable: in-person examination")


class ResultSource(models.TextChoices):
    """Who settled the result of record (screening.result_of_record)."""

    AI = "ai", _("AI")
    GRADER = "grader", _("Grader")


class Screening(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        QUEUED = "queued", _("Queued")
        PROCESSING = "processing", _("Processing")
        COMPLETED = "completed", _("Completed")
        UNGRADABLE = "ungradable", _("Ungradable")
        FAILED = "failed", _("Failed")
        # The patient withdrew consent before the result: never inferred (screening.consent).
        WITHDRAWN = "withdrawn", _("Stopped: consent withdrawn")

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="screenings", verbose_name=_("site")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="screenings", verbose_name=_("patient")
    )
    health_worker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="screenings",
        verbose_name=_("health worker"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    symptoms = models.JSONField(_("symptoms"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    triage = models.CharField(
        _("AI triage"), max_length=12, choices=Triage.choices, blank=True, db_index=True
    )
    reasons = models.JSONField(_("triage reasons"), default=list, blank=True)
    # Class letters found in either eye.
    findings = models.JSONField(_("AI findings"), default=list, blank=True)
    model_version = models.CharField(_("model version"), max_length=64, blank=True)
    error = models.TextField(_("error"), blank=True)
    # DICOM Study Instance UID of the FHIR ImagingStudy, fixed at creation (see new_dicom_uid).
    study_instance_uid = models.CharField(
        max_length=64, unique=True, default=new_dicom_uid, editable=False
    )
    # The result of record, once a person has read the photos (screening.result_of_record). Kept
    # beside the AI's triage and findings above, never over them: the two are what the field
    # performance of the model is measured on. Empty while the AI's result stands alone.
    final_triage = models.CharField(
        _("triage of record"), max_length=12, choices=Triage.choices, blank=True, db_index=True
    )
    final_findings = models.JSONField(_("findings of record"), default=list, blank=True)
    final_source = models.CharField(
        _("result settled by"), max_length=6, choices=ResultSource.choices, blank=True
    )
    final_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("settled by"),
    )
    final_at = models.DateTimeField(_("settled"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # "screenings" alone is the dashboard's counting word ("건 검진"): a msgid of its own here.
        verbose_name = _("screening record")
        verbose_name_plural = _("screening records")
        indexes = [
            models.Index(fields=["site", "-created_at"]),
            models.Index(fields=["status", "queued_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="completed") | ~Q(triage=""),
                name="completed_screening_has_triage",
            ),
            # A result of record is whole: its triage, who settled it and when, or nothing.
            models.CheckConstraint(
                condition=Q(final_triage="", final_source="", final_at__isnull=True)
                | (~Q(final_triage="") & ~Q(final_source="") & Q(final_at__isnull=False)),
                name="screening_final_result_whole",
            ),
            # A grader's result names the grader.
            models.CheckConstraint(
                condition=~Q(final_source="grader") | Q(final_by__isnull=False),
                name="screening_grader_result_has_grader",
            ),
        ]

    def __str__(self) -> str:
        # The patient's code, never the name: this label shows up in every related admin list.
        return _("Screening of %(patient)s, %(date)s (%(status)s)") % {
            "patient": self.patient.pseudonym if self.patient_id else "-",
            "date": f"{self.created_at:%Y-%m-%d}" if self.created_at else "-",
            "status": self.get_status_display(),
        }

    @property
    def is_finished(self) -> bool:
        return self.status in {
            self.Status.COMPLETED,
            self.Status.UNGRADABLE,
            self.Status.FAILED,
            self.Status.WITHDRAWN,
        }

    @property
    def is_referable(self) -> bool:
        return self.triage in {Triage.REFERABLE, Triage.URGENT, Triage.UNGRADABLE}

    @property
    def triage_of_record(self) -> str:
        """The triage that counts: a person's final read where there is one, else the AI's."""
        return self.final_triage or self.triage


# An importable name for the OpenAPI enum (config SPECTACULAR_SETTINGS ENUM_NAME_OVERRIDES): the
# upload answer and the screening output share this one enum.
ScreeningStatus = Screening.Status


class Eye(models.TextChoices):
    LEFT = "left", _("Left eye")
    RIGHT = "right", _("Right eye")


class ScreeningImage(models.Model):
    screening = models.ForeignKey(
        Screening, on_delete=models.CASCADE, related_name="images", verbose_name=_("screening")
    )
    eye = models.CharField(_("eye"), max_length=5, choices=Eye.choices)
    # Server-generated, content-hashed path under MEDIA_ROOT; never the client's file name.
    path = models.CharField(_("stored file"), max_length=200)
    # Indexed: every upload looks for the same photo in earlier screenings of the site.
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    width = models.PositiveIntegerField(_("width (px)"))
    height = models.PositiveIntegerField(_("height (px)"))
    gradable = models.BooleanField(_("gradable"))
    quality = models.JSONField(_("quality checks"), default=dict)
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    # When the file was deleted from storage (retention or erasure); ``path`` is empty from then.
    removed_at = models.DateTimeField(_("photo removed"), null=True, blank=True)
    # One series per eye and one instance per series; unique in the database, so two images can
    # never share a UID even when they are the same photo (see new_dicom_uid).
    series_instance_uid = models.CharField(
        max_length=64, unique=True, default=new_dicom_uid, editable=False
    )
    sop_instance_uid = models.CharField(
        max_length=64, unique=True, default=new_dicom_uid, editable=False
    )

    class Meta:
        ordering = ["eye"]
        verbose_name = _("fundus photo")
        verbose_name_plural = _("fundus photos")
        constraints = [
            models.UniqueConstraint(fields=["screening", "eye"], name="one_image_per_eye"),
        ]

    def __str__(self) -> str:
        return _("%(eye)s photo, %(width)s×%(height)s px") % {
            "eye": self.get_eye_display(),
            "width": self.width,
            "height": self.height,
        }


class EyeResult(models.Model):
    screening = models.ForeignKey(
        Screening, on_delete=models.CASCADE, related_name="results", verbose_name=_("screening")
    )
    eye = models.CharField(_("eye"), max_length=5, choices=Eye.choices)
    probabilities = models.JSONField(_("probabilities"))
    quality = models.JSONField(_("quality checks"), default=dict)
    top_class = models.CharField(_("most likely class"), max_length=1)
    findings = models.JSONField(_("findings"), default=list)
    heatmap_path = models.CharField(_("heatmap file"), max_length=200, blank=True)
    # The finding the heatmap explains (a class letter); empty when the eye has no heatmap.
    heatmap_class = models.CharField(_("heatmap finding"), max_length=1, blank=True, default="")
    model_version = models.CharField(_("model version"), max_length=64)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["eye"]
        verbose_name = _("AI result per eye")
        verbose_name_plural = _("AI results per eye")
        constraints = [
            # A redelivered inference task can never store a second result for the same eye.
            models.UniqueConstraint(fields=["screening", "eye"], name="one_result_per_eye"),
        ]

    def __str__(self) -> str:
        return _("%(eye)s: %(finding)s (model %(model)s)") % {
            "eye": self.get_eye_display(),
            "finding": CLASS_NAMES.get(self.top_class, self.top_class),
            "model": self.model_version or "-",
        }

    @property
    def heatmap_class_name(self) -> str:
        return str(CLASS_NAMES.get(self.heatmap_class, "")) if self.heatmap_class else ""


class RiskFactor(models.TextChoices):
    NONE = "", _("Everyone")
    DIABETES = "has_diabetes", _("Diabetes")
    HYPERTENSION = "has_hypertension", _("Hypertension")
    FAMILY_GLAUCOMA = "family_history_glaucoma", _("Family history of glaucoma")
    HIGH_MYOPIA = "high_myopia", _("High myopia")


class TriageRule(models.Model):
    """Decision thresholds per class, editable by admins.

    The threshold is on the refer decision's finding-score scale (``ml.decision``: the class's
    probability averaged with the probability that the eye is not normal): an eye is referred
    when some class reaches it. The default for every class is the bundle's one operating point
    (ml/MODEL_CARD.md, "The refer decision"); a row with a risk factor lowers it for patients who
    have that factor (diabetes -> D, family history -> G), because a missed case costs those
    patients more. ``urgent_threshold`` is on the probability scale and marks findings that need
    an urgent referral."""

    class_code = models.CharField(
        _("finding"), max_length=1, choices=[(c, CLASS_NAMES[c]) for c in CLASS_CODES]
    )
    risk_factor = models.CharField(
        _("risk factor"), max_length=40, choices=RiskFactor.choices, default="", blank=True
    )
    threshold = models.FloatField(
        _("threshold"),
        null=True,
        blank=True,
        help_text=_("Empty: use the model card's threshold."),
    )
    urgent_threshold = models.FloatField(_("urgent threshold"), null=True, blank=True)
    referable = models.BooleanField(_("referable"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["class_code", "risk_factor"]
        verbose_name = _("triage rule")
        verbose_name_plural = _("triage rules")
        constraints = [
            models.UniqueConstraint(
                fields=["class_code", "risk_factor"], name="one_rule_per_class_and_risk"
            ),
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gt=0, threshold__lt=1),
                name="rule_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(urgent_threshold__isnull=True)
                | Q(urgent_threshold__gt=0, urgent_threshold__lte=1),
                name="rule_urgent_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_class_code_display()} · {self.get_risk_factor_display()}"


class RecallReason(models.TextChoices):
    """Why a patient is due again (screening.recall decides; the protocol is documented there)."""

    ROUTINE = "routine", _("Routine rescreen")
    MEDICATION = "medication", _("Follow-up after symptoms treated by a pharmacist")
    RETAKE = "retake", _("Photos were not gradable: screen again")
    NOT_REFERRED = "not_referred", _("Referral not completed: follow up")
    AFTER_REFERRAL = "after_referral", _("Rescreen after a hospital visit")
    MISSED_APPOINTMENT = "missed_appointment", _("Missed the hospital appointment: call them")
    REFERRAL_OPEN = "referral_open", _("Referral open: no rescreen date")


class Recall(models.Model):
    """When a patient is due to be screened again, recomputed by screening.recall whenever their
    latest finished screening, its result of record or one of their referrals changes.

    One row per patient; the row is a cache of that computation, never edited by hand."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="recall")
    # The screening the date was computed from (the patient's latest finished one).
    screening = models.ForeignKey(
        Screening, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    due_on = models.DateField(_("due on"), null=True, blank=True, db_index=True)
    reason = models.CharField(_("reason"), max_length=20, choices=RecallReason.choices)
    # The due date the SMS reminder was sent for: one reminder per due date (a new date after a
    # new screening gets its own). OutboundMessage's unique dedupe key is what enforces "once".
    reminder_sent_for = models.DateField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_on", "patient_id"]
        verbose_name = _("recall")
        verbose_name_plural = _("recalls")
        constraints = [
            # None while a referral is open, and a date in every other case: a patient can never
            # drop off the recall list without a referral holding them.
            models.CheckConstraint(
                condition=Q(reason="referral_open", due_on__isnull=True)
                | (~Q(reason="referral_open") & Q(due_on__isnull=False)),
                name="recall_due_unless_referral_open",
            ),
        ]

    def __str__(self) -> str:
        return _("%(patient)s due %(when)s (%(reason)s)") % {
            "patient": self.patient.pseudonym if self.patient_id else "-",
            "when": self.due_on or "-",
            "reason": self.get_reason_display(),
        }


# The consent models live in their own module (screening.consent_models); re-exported here so
# that ``from screening.models import ConsentText`` and the app's model registry stay as they were.
from screening.consent_models import ConsentEvent, ConsentText  # noqa: E402, F401
