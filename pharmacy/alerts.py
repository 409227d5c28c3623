"""The pharmacy's standing alerts, checked on the beat (pharmacy.tasks.pharmacy_alerts_check):
low stock, lots about to expire or expired in a slot, and kiosks offline past
PHARMACY_KIOSK_OFFLINE_MINUTES. The same rules as the stock page (pharmacy.selectors.stock_overview),
for every pharmacy at once in three queries.

Each condition is an accounts Alert keyed by what it is about (``pharmacy:<id>:kiosk:<id>``...):
raised once and its pharmacists notified, until a later check no longer sees it (stock received,
the lot removed, a heartbeat), which resolves it; should it come back, it is raised anew.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import NotificationKind, User
from accounts.notifications import alert_raise, alert_resolve, per_language
from accounts.notifications_selectors import alerts_open
from pharmacy.models import Kiosk, Medication, StockLot

KINDS = (NotificationKind.LOW_STOCK, NotificationKind.LOT_EXPIRY, NotificationKind.KIOSK_OFFLINE)
SUBJECT_PREFIX = "pharmacy:"

# Message ids, translated when the pharmacist reads them (the bodies are the stock page's own).
LOW_STOCK_TITLE = gettext_noop("Low stock at %(kiosk)s")
LOW_STOCK_BODY = gettext_noop("Low stock at %(kiosk)s: %(medication)s, %(quantity)d left.")
EXPIRING_TITLE = gettext_noop("A lot expires soon at %(kiosk)s")
EXPIRING_BODY = gettext_noop("Lot %(lot)s of %(medication)s in slot %(slot)s expires on %(date)s.")
EXPIRED_TITLE = gettext_noop("An expired lot is still in %(kiosk)s")
EXPIRED_BODY = gettext_noop("Expired lot %(lot)s of %(medication)s in slot %(slot)s: remove it.")
OFFLINE_TITLE = gettext_noop("Kiosk %(kiosk)s is offline")
OFFLINE_BODY = gettext_noop("No heartbeat from %(kiosk)s for over %(minutes)d minutes.")


@dataclass(frozen=True)
class Condition:
    kind: str
    subject_key: str
    pharmacy_id: int
    title: str
    body: str
    params: dict[str, Any] = field(default_factory=dict)


def _medication(medication: Medication) -> dict[str, str]:
    name_en = medication.name_en or medication.name_ko
    if medication.strength and medication.strength not in name_en:
        name_en = f"{name_en} {medication.strength}"
    return per_language(ko=medication.label_ko, en=name_en)


def pharmacy_alert_conditions(*, now: dt.datetime) -> list[Condition]:
    """Every alert condition that holds now, over all pharmacies. Retired kiosks raise nothing;
    only active ones can be offline (a kiosk in maintenance is expected to be quiet)."""
    today = timezone.localdate(now)
    minutes = settings.PHARMACY_KIOSK_OFFLINE_MINUTES
    offline_before = now - dt.timedelta(minutes=minutes)
    warn_until = today + dt.timedelta(days=settings.PHARMACY_EXPIRY_WARNING_DAYS)
    conditions: list[Condition] = []

    offline = Kiosk.objects.filter(status=Kiosk.Status.ACTIVE).filter(
        Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=offline_before)
    )
    for kiosk in offline.order_by("pk"):
        conditions.append(
            Condition(
                NotificationKind.KIOSK_OFFLINE,
                f"pharmacy:{kiosk.pharmacy_id}:kiosk:{kiosk.pk}",
                kiosk.pharmacy_id,
                OFFLINE_TITLE,
                OFFLINE_BODY,
                {"kiosk": kiosk.name, "minutes": minutes},
            )
        )

    in_service = StockLot.objects.exclude(kiosk__status=Kiosk.Status.RETIRED)
    # Usable boxes per kiosk and medication: expired lots count for nothing (as on the page).
    low = (
        in_service.values("kiosk_id", "kiosk__pharmacy_id", "kiosk__name", "medication_id")
        .annotate(usable=Coalesce(Sum("quantity", filter=Q(expiry__gt=today)), 0))
        .filter(usable__lt=settings.PHARMACY_LOW_STOCK_THRESHOLD)
        .order_by("kiosk_id", "medication_id")
    )
    low_rows = list(low)
    medications = Medication.objects.in_bulk({row["medication_id"] for row in low_rows})
    for row in low_rows:
        conditions.append(
            Condition(
                NotificationKind.LOW_STOCK,
                f"pharmacy:{row['kiosk__pharmacy_id']}:kiosk:{row['kiosk_id']}"
                f":medication:{row['medication_id']}",
                row["kiosk__pharmacy_id"],
                LOW_STOCK_TITLE,
                LOW_STOCK_BODY,
                {
                    "kiosk": row["kiosk__name"],
                    "medication": _medication(medications[row["medication_id"]]),
                    "quantity": row["usable"],
                },
            )
        )

    expiring = (
        in_service.filter(quantity__gt=0, expiry__lte=warn_until)
        .select_related("kiosk", "medication")
        .order_by("pk")
    )
    for lot in expiring:
        expired = lot.expiry <= today
        # Expiring and expired are two subjects: when a lot passes its date the "expires soon"
        # alert resolves and "remove it" is raised, so the pharmacist hears about it again.
        conditions.append(
            Condition(
                NotificationKind.LOT_EXPIRY,
                f"pharmacy:{lot.kiosk.pharmacy_id}:lot:{lot.pk}:"
                + ("expired" if expired else "expiring"),
                lot.kiosk.pharmacy_id,
                EXPIRED_TITLE if expired else EXPIRING_TITLE,
                EXPIRED_BODY if expired else EXPIRING_BODY,
                {
                    "kiosk": lot.kiosk.name,
                    "lot": lot.lot_number,
                    "medication": _medication(lot.medication),
                    "slot": lot.slot,
                    "date": lot.expiry.isoformat(),
                },
            )
        )
    return conditions


def _pharmacists_by_pharmacy(pharmacy_ids: set[int]) -> dict[int, list[User]]:
    found: dict[int, list[User]] = defaultdict(list)
    for user in User.objects.filter(
        pharmacist_membership__pharmacy_id__in=pharmacy_ids, is_active=True
    ).select_related("pharmacist_membership"):
        found[user.pharmacist_membership.pharmacy_id].append(user)
    return found


def pharmacy_alerts_check(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Raise the conditions that hold and are not yet open; resolve the open ones that no
    longer hold. Safe to run twice, or twice at once: raising is decided by the unique index on
    open alerts, resolving by a conditional UPDATE. Returns {"raised": n, "resolved": m}."""
    now = now or timezone.now()
    conditions = pharmacy_alert_conditions(now=now)
    open_now = alerts_open(kinds=KINDS, subject_prefix=SUBJECT_PREFIX)
    holding = {(c.kind, c.subject_key) for c in conditions}
    new = [c for c in conditions if (c.kind, c.subject_key) not in open_now]
    pharmacists = _pharmacists_by_pharmacy({c.pharmacy_id for c in new}) if new else {}
    link = reverse("pharmacy:stock")
    raised = 0
    for condition in new:
        alert = alert_raise(
            kind=condition.kind,
            subject_key=condition.subject_key,
            recipients=pharmacists.get(condition.pharmacy_id, []),
            title=condition.title,
            body=condition.body,
            params=condition.params,
            link=link,
        )
        raised += alert is not None
    resolved = 0
    for kind, subject_key in sorted(open_now - holding):
        resolved += alert_resolve(kind=kind, subject_key=subject_key)
    return {"raised": raised, "resolved": resolved}
