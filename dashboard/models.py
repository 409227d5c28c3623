"""Who may see the public-health dashboard, beyond platform admins.

accounts.Role has no public-health role, so access is a membership row, like
screening.SiteMembership for health workers: a user with a DashboardAccess row sees the dashboard
for the regions it lists (Site.region values), or for every region when the list is empty.
Platform admins need no row. Everyone else gets a 403.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from referrals.models import ReferralStatus
from screening.models import CLASS_CODES, Triage


def _validate_regions(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(r, str) and r.strip() for r in value):
        raise ValidationError(_("Give a list of region names, or an empty list for all regions."))


class DashboardAccess(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="dashboard_access",
        verbose_name=_("user"),
    )
    # Site.region values this person may see; [] = every region. A value that is not a list of
    # names (written around the admin form) grants nothing: see dashboard.selectors.dashboard_scope.
    regions = models.JSONField(
        _("regions"),
        default=list,
        blank=True,
        validators=[_validate_regions],
        help_text=_('Region names as written on the sites, e.g. ["Gangwon"]. Empty: all regions.'),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("dashboard access")
        verbose_name_plural = _("dashboard access")

    def __str__(self) -> str:
        if isinstance(self.regions, list) and self.regions:
            regions = ", ".join(str(r) for r in self.regions)
        else:
            regions = str(_("all regions"))
        return f"{self.user} ({regions})"


# --- daily roll-up ----------------------------------------------------------------------------
# The figures of closed days, per site, so that a year of dashboard reads ~15,000 small rows
# instead of joining every image, result and referral event of the year (bench/dashboard_bench.py).
# Derived data: dashboard.services.rollup_days_refresh rewrites whole days from the raw tables, the
# beat task keeps the recent and changed days fresh, `manage.py dashboard_rollup` rebuilds a range.
# The selector reads a day from here only once it is over and was computed after it ended; today
# (and any day not rolled up) is counted from the raw rows, so today's figures are always exact.


class RollupDay(models.Model):
    """A local day (settings.TIME_ZONE) whose per-site figures are in DailySiteStats.

    A site with nothing that day has no DailySiteStats row; this row is what says "the day was
    counted" (zero rather than unknown). ``computed_at`` is when the computation started: the day
    is complete in the roll-up only if that was after the day ended."""

    day = models.DateField(primary_key=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("dashboard roll-up day")
        verbose_name_plural = _("dashboard roll-up days")

    def __str__(self) -> str:
        return f"{self.day} @ {self.computed_at:%Y-%m-%d %H:%M}"


class DailySiteStats(models.Model):
    """One site's dashboard figures for one local day, counted like dashboard.selectors counts
    raw rows: screenings (drafts left out) by the day they were created, and their images, eye
    results and referrals with them. Column names follow screening.Triage values and
    screening.CLASS_CODES (TRIAGE_FIELDS / POSITIVE_FIELDS below; a test fails if a value has no
    column)."""

    day = models.ForeignKey(
        RollupDay, on_delete=models.CASCADE, related_name="sites", db_column="day"
    )
    # Derived data: a site that can be deleted (it has no screenings) takes its zeros along.
    site = models.ForeignKey("screening.Site", on_delete=models.CASCADE, related_name="+")
    screenings = models.PositiveIntegerField(default=0)
    triage_normal = models.PositiveIntegerField(default=0)
    triage_medication = models.PositiveIntegerField(default=0)
    triage_referable = models.PositiveIntegerField(default=0)
    triage_urgent = models.PositiveIntegerField(default=0)
    triage_ungradable = models.PositiveIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    images_gradable = models.PositiveIntegerField(default=0)
    results = models.PositiveIntegerField(default=0)
    # Eye results whose findings hold the class letter.
    positive_n = models.PositiveIntegerField(default=0)
    positive_d = models.PositiveIntegerField(default=0)
    positive_g = models.PositiveIntegerField(default=0)
    positive_c = models.PositiveIntegerField(default=0)
    positive_a = models.PositiveIntegerField(default=0)
    positive_h = models.PositiveIntegerField(default=0)
    positive_m = models.PositiveIntegerField(default=0)
    positive_o = models.PositiveIntegerField(default=0)
    referrals = models.PositiveIntegerField(default=0)
    referrals_cancelled = models.PositiveIntegerField(default=0)
    referrals_open = models.PositiveIntegerField(default=0)
    # Referrals whose event history reached the step (dashboard.selectors._REACHED).
    reached_sent = models.PositiveIntegerField(default=0)
    reached_accepted = models.PositiveIntegerField(default=0)
    reached_attended = models.PositiveIntegerField(default=0)
    reached_completed = models.PositiveIntegerField(default=0)
    declined = models.PositiveIntegerField(default=0)
    no_show = models.PositiveIntegerField(default=0)
    # Seconds from first `sent` to first `accepted`, one per accepted referral: a median does
    # not add up across days, so the waits themselves are kept (a few per site and day).
    waits = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("dashboard daily site figures")
        verbose_name_plural = _("dashboard daily site figures")
        constraints = [
            # Two overlapping refreshes upsert on this key instead of doubling a day.
            models.UniqueConstraint(
                fields=["day", "site"], name="dashboard_dailysitestats_day_site"
            ),
            models.CheckConstraint(
                condition=models.Q(images_gradable__lte=models.F("images")),
                name="dashboard_dailysitestats_gradable_lte_images",
            ),
        ]

    def __str__(self) -> str:
        return _("%(site)s on %(day)s: %(n)s screenings") % {
            "site": self.site,
            "day": self.day_id,
            "n": self.screenings,
        }


# Which DailySiteStats column holds which figure (the selector sums them, the service fills them).
# Built from screening's values, so that a new triage value or class without its column fails
# (tests/dashboard/test_rollup.py) instead of silently counting nothing.
TRIAGE_FIELDS = {value: f"triage_{value}" for value in Triage.values}
POSITIVE_FIELDS = {code: f"positive_{code.lower()}" for code in CLASS_CODES}
REFERRAL_FIELDS = {
    "total": "referrals",
    ReferralStatus.CANCELLED: "referrals_cancelled",
    "open": "referrals_open",
    ReferralStatus.SENT: "reached_sent",
    ReferralStatus.ACCEPTED: "reached_accepted",
    ReferralStatus.ATTENDED: "reached_attended",
    ReferralStatus.COMPLETED: "reached_completed",
    ReferralStatus.DECLINED: "declined",
    ReferralStatus.NO_SHOW: "no_show",
}
COUNT_FIELDS = (
    "screenings",
    *TRIAGE_FIELDS.values(),
    "images",
    "images_gradable",
    "results",
    *POSITIVE_FIELDS.values(),
    *REFERRAL_FIELDS.values(),
)


# --- field performance ------------------------------------------------------------------------
class SiteAgreementAlert(models.Model):
    """A site whose AI agreed with the graders too rarely over its latest graded screenings
    (dashboard.field_performance_services): the first sign of a new camera, a dirty lens or a
    model that does not fit the population. Raised once and kept open until the agreement is
    back at the threshold; the figures are those seen when it was raised."""

    site = models.ForeignKey("screening.Site", on_delete=models.CASCADE, related_name="+")
    raised_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    graded = models.PositiveIntegerField()
    agreed = models.PositiveIntegerField()
    threshold = models.FloatField()

    class Meta:
        ordering = ["-raised_at", "id"]
        verbose_name = _("site agreement alert")
        verbose_name_plural = _("site agreement alerts")
        constraints = [
            # One open alert per site: two beat runs evaluating at the same moment cannot both
            # raise it (the second insert fails and is ignored).
            models.UniqueConstraint(
                fields=["site"],
                condition=models.Q(resolved_at__isnull=True),
                name="dashboard_one_open_agreement_alert_per_site",
            ),
            models.CheckConstraint(
                condition=models.Q(agreed__lte=models.F("graded")),
                name="dashboard_agreement_alert_agreed_lte_graded",
            ),
        ]

    def __str__(self) -> str:
        return _("%(site)s: %(agreed)s of %(graded)s graded screenings agreed") % {
            "site": self.site,
            "agreed": self.agreed,
            "graded": self.graded,
        }

    @property
    def agreement(self) -> float:
        return self.agreed / self.graded if self.graded else 1.0
