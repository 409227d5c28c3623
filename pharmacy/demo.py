"""The demo kiosks of `make run`: their derived secrets, and which kiosks count as one.

A demo kiosk's secret is derived from SECRET_KEY and its id (seed_demo_pharmacy), so the seed can
print it again and the simulator can fill it in; production kiosks get random secrets from
pharmacy.services.kiosk_create. A kiosk counts as a seeded demo kiosk only if its id has the
demo prefix AND its stored hash is that of the derived secret: a demo kiosk whose secret was
rotated in the admin is no longer offered. Nothing here is offered unless settings.DEBUG.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings

from pharmacy import codes
from pharmacy.models import Kiosk

DEMO_KIOSK_PREFIX = "K-DEMO-"


def demo_kiosk_secret(kiosk_id: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"demo-kiosk:{kiosk_id}".encode(), hashlib.sha256
    ).hexdigest()[:32]


@dataclass(frozen=True)
class DemoKiosk:
    kiosk: Kiosk
    secret: str


def demo_kiosks() -> list[DemoKiosk]:
    """The seeded demo kiosks with their secrets, by id; empty unless DEBUG (one query)."""
    if not settings.DEBUG:
        return []
    found = []
    for kiosk in (
        Kiosk.objects.filter(kiosk_id__startswith=DEMO_KIOSK_PREFIX)
        .exclude(status=Kiosk.Status.RETIRED)
        .select_related("pharmacy")
        .order_by("kiosk_id")
    ):
        secret = demo_kiosk_secret(kiosk.kiosk_id)
        if codes.kiosk_secret_matches(secret, kiosk.secret_hash):
            found.append(DemoKiosk(kiosk=kiosk, secret=secret))
    return found
