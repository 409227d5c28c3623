"""The field-agreement alert's writes: raise it for a site whose AI agrees too rarely with the
graders, resolve it when the agreement is back (dashboard.models.SiteAgreementAlert).

The page computes the alert live (dashboard.field_performance.sites_below_threshold); these rows
are its record (when it was raised, on which figures, when it ended), kept by the beat task
``dashboard.tasks.field_agreement_alerts_check``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard import field_performance
from dashboard.models import SiteAgreementAlert

logger = logging.getLogger(__name__)


def field_agreement_alerts_evaluate(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Raise an alert for each site below the threshold that has none open, and resolve the open
    alerts of sites that are no longer below it. Returns how many were raised and resolved.

    Idempotent: a second run finds the open alerts and raises nothing more; two runs at once
    cannot both raise one for a site, because the partial unique constraint (one open alert per
    site) refuses the second insert, which is then skipped. A site that has too few graded
    screenings to judge keeps whatever alert it has (nothing new is known about it)."""
    now = now or timezone.now()
    agreements = field_performance.recent_agreement()
    below = {a.site_id: a for a in field_performance.sites_below_threshold(agreements)}
    judged = {a.site_id for a in agreements if a.graded >= settings.FIELD_AGREEMENT_MIN_GRADED}
    open_sites = set(
        SiteAgreementAlert.objects.filter(resolved_at__isnull=True).values_list(
            "site_id", flat=True
        )
    )
    raised = 0
    for site_id, agreement in below.items():
        if site_id in open_sites:
            continue
        try:
            with transaction.atomic():
                SiteAgreementAlert.objects.create(
                    site_id=site_id,
                    raised_at=now,
                    graded=agreement.graded,
                    agreed=agreement.agreed,
                    threshold=settings.FIELD_AGREEMENT_ALERT_BELOW,
                )
        except IntegrityError:  # raised by a concurrent run meanwhile
            continue
        raised += 1
        logger.warning(
            "field agreement alert: site %s agreed on %s of its last %s graded screenings",
            site_id,
            agreement.agreed,
            agreement.graded,
        )
    recovered = (open_sites & judged) - set(below)
    resolved = SiteAgreementAlert.objects.filter(
        site_id__in=recovered, resolved_at__isnull=True
    ).update(resolved_at=now)
    return {"raised": raised, "resolved": resolved}
