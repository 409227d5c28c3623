"""What a dashboard read covers: the regions a user may see (DashboardScope) and the range, region
and site asked for (DashboardFilters).

Plain values without queries, so that the selectors, the kiosk section and the filter parser can
all take them without importing one another.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from screening.models import Site


def day_start(day: dt.date) -> dt.datetime:
    """Local midnight (settings.TIME_ZONE) at the start of ``day``."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


@dataclass(frozen=True)
class DashboardScope:
    """What a user may see: every region (``regions is None``) or only the listed ones."""

    regions: tuple[str, ...] | None

    @property
    def all_regions(self) -> bool:
        return self.regions is None

    def allows_region(self, region: str) -> bool:
        return self.regions is None or region in self.regions


@dataclass(frozen=True)
class DashboardFilters:
    date_from: dt.date
    date_to: dt.date
    site: Site | None = None
    region: str = ""

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start of date_from, start of the day after date_to) in local time."""
        return day_start(self.date_from), day_start(self.date_to + dt.timedelta(days=1))

    def as_query(self) -> dict[str, str]:
        """The filters as query-string values (for the CSV link and the form)."""
        query = {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat()}
        if self.site is not None:
            query["site"] = str(self.site.pk)
        if self.region:
            query["region"] = self.region
        return query
