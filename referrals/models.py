"""Hospital registry and referrals (lifecycle after FHIR Task: proposed -> sent -> accepted ...)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class SpecialtyCode(models.TextChoices):
    """The specialties the ranking knows about. Admins may add more rows to Specialty (for the
    registry and the CSV import); the finding -> specialty mapping only uses these."""

    GENERAL = "general", _("General ophthalmology")
    RETINA = "retina", _("Retina")
    GLAUCOMA = "glaucoma", _("Glaucoma")
    CATARACT = "cataract", _("Cataract / anterior segment")
    NEURO = "neuro", _("Neuro-ophthalmology")
    PAEDIATRIC = "paediatric", _("Paediatric ophthalmology")
    CORNEA = "cornea", _("Cornea")
    OCULOPLASTICS = "oculoplastics", _("Oculoplastics")


class Specialty(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("specialty")
        verbose_name_plural = _("specialties")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Hospital(models.Model):
    """An organisation that receives referrals. Hospital staff see only their hospital's data."""

    name = models.CharField(_("name"), max_length=200)
    name_en = models.CharField(_("English name"), max_length=200, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    # Nullable so that a registry row without a geocode can exist: it is never ranked (the
    # ranking filters on non-null coordinates) and the admin list flags it.
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_partner = models.BooleanField(_("partner hospital"), default=True)
    accepts_referrals = models.BooleanField(_("accepts referrals"), default=True)
    weekly_capacity = models.PositiveIntegerField(_("weekly capacity"), default=0)
    open_slots = models.PositiveIntegerField(_("open slots this week"), default=0)
    typical_wait_days = models.PositiveIntegerField(_("typical wait (days)"), default=14)
    specialties = models.ManyToManyField(
        Specialty, related_name="hospitals", blank=True, verbose_name=_("specialties")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("hospital")
        verbose_name_plural = _("hospitals")
        indexes = [
            # The ranking's bounding-box prefilter: a range on latitude, then longitude, only over
            # hospitals that can be ranked (partial), covering id so the scan stays in the index.
            models.Index(
                fields=["latitude", "longitude"],
                include=["id"],
                condition=Q(
                    accepts_referrals=True, latitude__isnull=False, longitude__isnull=False
                ),
                name="hospital_rankable_latlon",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="hospital_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="hospital_longitude_range",
            ),
            # Half a coordinate is no coordinate: both or neither.
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(latitude__isnull=False, longitude__isnull=False),
                name="hospital_coordinates_both_or_neither",
            ),
            # The same hospital imported twice (two CSV uploads, an admin and an import racing).
            models.UniqueConstraint(
                Lower("name"), Lower("address"), name="hospital_unique_name_address"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class HospitalStaffMembership(models.Model):
    """A hospital staff member works at exactly one hospital: the scope of their inbox."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="hospital_membership",
        verbose_name=_("user"),
    )
    hospital = models.ForeignKey(
        Hospital, on_delete=models.PROTECT, related_name="memberships", verbose_name=_("hospital")
    )

    class Meta:
        verbose_name = _("hospital staff membership")
        verbose_name_plural = _("hospital staff memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.hospital}"


class ReferralStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")
    SENT = "sent", _("Sent to hospital")
    ACCEPTED = "accepted", _("Accepted (appointment booked)")
    DECLINED = "declined", _("Declined by hospital")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("Did not attend")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


# A referral in one of these states still needs someone to act; completed and cancelled are final.
ACTIVE_STATUSES = (
    ReferralStatus.PROPOSED,
    ReferralStatus.SENT,
    ReferralStatus.ACCEPTED,
    ReferralStatus.DECLINED,
    ReferralStatus.ATTENDED,
    ReferralStatus.NO_SHOW,
)
# States in which a hospital is attached and may see the screening.
AT_HOSPITAL_STATUSES = (
    ReferralStatus.SENT,
    ReferralStatus.ACCEPTED,
    ReferralStatus.ATTENDED,
    ReferralStatus.NO_SHOW,
    ReferralStatus.COMPLETED,
)
# States in which the addressed hospital still sees the referral in its inbox: also after it
# declined (until the health worker re-sends it elsewhere, which changes the hospital) or the
# health worker cancelled it, so that a hospital that loses a race gets a 409, not a 404.
HOSPITAL_VISIBLE_STATUSES = (
    *AT_HOSPITAL_STATUSES,
    ReferralStatus.DECLINED,
    ReferralStatus.CANCELLED,
)


class Referral(models.Model):
    class Urgency(models.TextChoices):
        ROUTINE = "routine", _("Routine")
        URGENT = "urgent", _("Urgent")

    class Origin(models.TextChoices):
        HOME = "home", _("Patient's home")
        SITE = "site", _("Screening site")
        NONE = "", _("Unknown")

    screening = models.ForeignKey(
        "screening.Screening",
        on_delete=models.PROTECT,
        related_name="referrals",
        verbose_name=_("screening"),
    )
    hospital = models.ForeignKey(
        Hospital,
        on_delete=models.PROTECT,
        related_name="referrals",
        null=True,
        blank=True,
        verbose_name=_("hospital"),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=ReferralStatus.choices, default=ReferralStatus.PROPOSED
    )
    urgency = models.CharField(_("urgency"), max_length=8, choices=Urgency.choices)
    required_specialties = models.JSONField(_("required specialties"), default=list, blank=True)
    origin_source = models.CharField(
        _("ranked from"), max_length=4, choices=Origin.choices, blank=True
    )
    origin_latitude = models.FloatField(_("origin latitude"), null=True, blank=True)
    origin_longitude = models.FloatField(_("origin longitude"), null=True, blank=True)
    radius_km = models.FloatField(_("search radius (km)"), null=True, blank=True)
    # Snapshot of the ranking when proposed: [{hospital_id, rank, score, distance_km,
    # specialties, reasons: [{code, params}]}]. Reasons are codes so they render in the reader's
    # language; the snapshot keeps what the health worker was shown even if the registry changes.
    candidates = models.JSONField(_("ranked hospitals"), default=list, blank=True)
    # Why there are no candidates ("no_origin", "none_in_range"), empty when there are some.
    proposal_note = models.CharField(_("why no hospital was ranked"), max_length=40, blank=True)
    appointment_at = models.DateTimeField(_("appointment"), null=True, blank=True)
    decline_reason = models.TextField(_("reason for declining"), blank=True)
    diagnosis = models.TextField(_("diagnosis"), blank=True)
    outcome_notes = models.TextField(_("outcome notes"), blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    responded_at = models.DateTimeField(_("answered"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    escalation_exhausted = models.BooleanField(_("no hospital left to escalate to"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        indexes = [
            models.Index(fields=["hospital", "status", "-created_at"]),
            # The escalation sweep: sent referrals by the time they were sent.
            models.Index(
                fields=["sent_at"], condition=Q(status="sent"), name="referral_sent_awaiting"
            ),
        ]
        constraints = [
            # One active referral per screening: a redelivered proposal task, or two health
            # workers pressing "refer" at once, cannot open a second one.
            models.UniqueConstraint(
                fields=["screening"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="one_active_referral_per_screening",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["proposed", "cancelled", "declined"])
                | Q(hospital__isnull=False),
                name="referral_at_hospital_has_hospital",
            ),
            models.CheckConstraint(
                condition=~Q(status="declined") | ~Q(decline_reason=""),
                name="referral_declined_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status="accepted") | Q(appointment_at__isnull=False),
                name="referral_accepted_has_appointment",
            ),
            models.CheckConstraint(
                condition=~Q(status="completed") | ~Q(diagnosis=""),
                name="referral_completed_has_diagnosis",
            ),
        ]

    def __str__(self) -> str:
        if self.hospital_id:
            return _("Referral %(id)s to %(hospital)s (%(status)s)") % {
                "id": self.pk,
                "hospital": self.hospital,
                "status": self.get_status_display(),
            }
        return _("Referral %(id)s (%(status)s)") % {
            "id": self.pk,
            "status": self.get_status_display(),
        }

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_urgent(self) -> bool:
        return self.urgency == self.Urgency.URGENT


class ReferralEvent(models.Model):
    """One row per transition: who, when, from, to, why. The history the panel and admin show."""

    class Kind(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        SENT = "sent", _("Sent")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        ATTENDED = "attended", _("Attended")
        NO_SHOW = "no_show", _("Did not attend")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        ESCALATED = "escalated", _("Escalated to the next hospital")
        ESCALATION_FAILED = "escalation_failed", _("No further hospital to escalate to")

    referral = models.ForeignKey(
        Referral, on_delete=models.CASCADE, related_name="events", verbose_name=_("referral")
    )
    kind = models.CharField(_("event"), max_length=20, choices=Kind.choices)
    from_status = models.CharField(
        _("from status"), max_length=12, choices=ReferralStatus.choices, blank=True
    )
    to_status = models.CharField(_("to status"), max_length=12, choices=ReferralStatus.choices)
    # The hospital the referral is at after this event (None while proposed or cancelled early).
    hospital = models.ForeignKey(
        Hospital,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("hospital"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("by"),
    )
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("referral event")
        verbose_name_plural = _("referral events")
        indexes = [models.Index(fields=["referral", "created_at"])]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}" if self.created_at else "-"
        return f"{self.get_kind_display()} ({when})"
