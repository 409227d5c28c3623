"""Parsing and checking the dashboard's filters (site, region, date range) from a query string.

Bad input is a 400 with a message (InvalidInput), never a 500; a site or region outside what the
user may see is a 404 (NotFound), the same answer as for one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import InvalidInput, NotFound
from dashboard.scope import DashboardFilters, DashboardScope
from dashboard.selectors import sites_for_scope

# The default window when no dates are given: the last 12 weeks, today included.
DEFAULT_DAYS = 84
# A per-day chart of more than two years is unreadable, and the bound keeps every query's range
# (and the zero-filled day list built from it) small.
MAX_DAYS = 731
# No screening data can predate the platform; a year like 0001 is a typo, not a query.
EARLIEST = dt.date(2000, 1, 1)


def _parse_date(raw: str, *, field: str, label: str) -> dt.date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            _("%(field)s is not a date: use the form YYYY-MM-DD.") % {"field": label}, field=field
        ) from None
    if value < EARLIEST or value.year > 2999:
        raise InvalidInput(_("%(field)s is out of range.") % {"field": label}, field=field)
    return value


def filters_parse(
    *, params: Mapping[str, str], scope: DashboardScope, today: dt.date | None = None
) -> DashboardFilters:
    """Read ``date_from``, ``date_to``, ``site`` and ``region`` (all optional) from ``params``."""
    today = today or timezone.localdate()
    date_from = _parse_date(params.get("date_from", ""), field="date_from", label=_("Start date"))
    date_to = _parse_date(params.get("date_to", ""), field="date_to", label=_("End date"))
    if date_to is None:
        date_to = max(today, date_from) if date_from else today
    if date_from is None:
        date_from = date_to - dt.timedelta(days=DEFAULT_DAYS - 1)
    if date_from > date_to:
        raise InvalidInput(_("The start date must not be after the end date."), field="date_from")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise InvalidInput(
            _("Choose a range of at most %(days)d days.") % {"days": MAX_DAYS}, field="date_from"
        )

    region = (params.get("region", "") or "").strip()
    if len(region) > 100:
        raise InvalidInput(_("Unknown region."), field="region")
    if region and not scope.allows_region(region):
        raise NotFound(_("Region not found."), field="region")

    site = None
    raw_site = (params.get("site", "") or "").strip()
    if raw_site:
        if not raw_site.isdigit() or len(raw_site) > 18:
            raise InvalidInput(_("Choose a site from the list."), field="site")
        site = sites_for_scope(scope=scope).filter(pk=int(raw_site)).first()
        if site is None:
            raise NotFound(_("Site not found."), field="site")
        if region and site.region != region:
            raise InvalidInput(_("The site is not in the chosen region."), field="site")
    return DashboardFilters(date_from=date_from, date_to=date_to, site=site, region=region)
