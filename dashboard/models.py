"""Who may see the public-health dashboard, beyond platform admins.

accounts.Role has no public-health role (and accounts is not ours to change), so access is a
membership row, like screening.SiteMembership for health workers: a user with a DashboardAccess
row sees the dashboard for the regions it lists (Site.region values), or for every region when
the list is empty. Platform admins need no row. Everyone else gets a 403.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


def _validate_regions(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(r, str) and r.strip() for r in value):
        raise ValidationError(_("Give a list of region names, or an empty list for all regions."))


class DashboardAccess(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_access"
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("dashboard access")
        verbose_name_plural = _("dashboard access")

    def __str__(self) -> str:
        return f"{self.user} ({', '.join(self.regions) if isinstance(self.regions, list) and self.regions else '*'})"
