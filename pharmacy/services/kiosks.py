"""Kiosks: provisioning (register, rotate the secret, retire), heartbeats, and a patient's call
for the pharmacist.

Provisioning is done by a platform admin in the Django admin or with `manage.py kiosk`; each
change and its audit entry commit together (accounts.audit)."""

from __future__ import annotations

import getpass
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from config.errors import Conflict, InvalidInput, NotFound
from pharmacy import codes
from pharmacy.models import Dispense, Kiosk, KioskCallRequest, Pharmacy
from pharmacy.services._common import _require_pharmacist

KIOSK_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")  # no ':' or spaces: `Kiosk <id>:<secret>`


def kiosk_new_id() -> str:
    return f"K-{codes.new_salt()[:8].upper()}"


def kiosk_create(
    *,
    pharmacy: Pharmacy,
    name: str,
    kiosk_id: str | None = None,
    location: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
) -> tuple[Kiosk, str]:
    """Create a kiosk and return it with its secret (shown once; only its HMAC is stored).

    Writes no audit entry: the demo seed, benchmarks and tests use it. A person registering a
    kiosk goes through ``kiosk_register``."""
    kiosk_id = kiosk_id or kiosk_new_id()
    if not KIOSK_ID_RE.match(kiosk_id):
        raise InvalidInput(
            _("A kiosk id is 1-32 letters, digits, dots, dashes or underscores."),
            code="invalid_kiosk_id",
            field="kiosk_id",
        )
    secret = codes.new_kiosk_secret()
    kiosk = Kiosk.objects.create(
        pharmacy=pharmacy,
        name=name,
        kiosk_id=kiosk_id,
        location=location,
        latitude=latitude,
        longitude=longitude,
        secret_hash=codes.kiosk_secret_hash(secret),
    )
    return kiosk, secret


def _kiosk_audit(
    kiosk: Kiosk,
    *,
    action: str,
    change: str,
    actor: User | None,
    request: Any,
    via: str,
) -> None:
    """One audit entry for a provisioning change (never the secret). Without a signed-in user the
    change came from a shell (`manage.py kiosk`): the entry names the operating-system account."""
    from accounts.audit import audit_record

    actor_type: str | None = None
    actor_username: str | None = None
    if actor is None:
        actor_type, actor_username = "system", f"shell:{getpass.getuser()}"
    audit_record(
        action=action,
        user=actor,
        object_type="kiosk",
        object_ids=[kiosk.pk],
        request=request,
        url_name=via,
        extra={
            "change": change,
            "kiosk_id": kiosk.kiosk_id,
            "pharmacy_id": kiosk.pharmacy_id,
            "status": kiosk.status,
        },
        actor_type=actor_type,
        actor_username=actor_username,
    )


def kiosk_register(
    *,
    pharmacy: Pharmacy,
    name: str,
    kiosk_id: str | None = None,
    location: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    actor: User | None = None,
    request: Any = None,
    via: str = "",
) -> tuple[Kiosk, str]:
    """Register a kiosk: ``kiosk_create`` and its audit entry in one transaction (no kiosk without
    its record). The secret is returned once, to show to the admin; it is stored nowhere."""
    with transaction.atomic():
        try:
            with transaction.atomic():  # the savepoint keeps the outer transaction usable
                kiosk, secret = kiosk_create(
                    pharmacy=pharmacy,
                    name=name,
                    kiosk_id=kiosk_id,
                    location=location,
                    latitude=latitude,
                    longitude=longitude,
                )
        except IntegrityError as exc:
            raise Conflict(
                _("A kiosk with this id already exists."), code="kiosk_id_taken", field="kiosk_id"
            ) from exc
        _kiosk_audit(
            kiosk, action="create", change="registered", actor=actor, request=request, via=via
        )
    return kiosk, secret


def _kiosk_lock(kiosk: Kiosk | int) -> Kiosk:
    pk = kiosk.pk if isinstance(kiosk, Kiosk) else kiosk
    found = Kiosk.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(_("Kiosk not found."), code="kiosk_not_found")
    return found


def kiosk_rotate_secret(
    *, kiosk: Kiosk | int, actor: User | None = None, request: Any = None, via: str = ""
) -> str:
    """Give a kiosk a new secret and return it (shown once). The old secret stops working at
    commit. Audited. A new secret does not revive a retired kiosk: authentication refuses it by
    its status (the admin and `manage.py kiosk` do not offer it)."""
    secret = codes.new_kiosk_secret()
    with transaction.atomic():
        row = _kiosk_lock(kiosk)
        row.secret_hash = codes.kiosk_secret_hash(secret)
        row.save(update_fields=["secret_hash"])
        _kiosk_audit(
            row, action="update", change="secret_rotated", actor=actor, request=request, via=via
        )
    return secret


def kiosk_retire(
    *, kiosk: Kiosk | int, actor: User | None = None, request: Any = None, via: str = ""
) -> tuple[Kiosk, bool]:
    """Retire a kiosk for good: it is refused at authentication from the commit on (its status),
    and its secret is replaced by one nobody knows, so that no later status edit revives it.
    Nothing is deleted: its dispenses, stock ledger and audit history stay. Idempotent: returns
    (kiosk, False) for a kiosk already retired, with no second audit entry."""
    with transaction.atomic():
        row = _kiosk_lock(kiosk)
        if row.status == Kiosk.Status.RETIRED:
            return row, False
        row.status = Kiosk.Status.RETIRED
        row.secret_hash = codes.kiosk_secret_hash(codes.new_kiosk_secret())
        row.save(update_fields=["status", "secret_hash"])
        _kiosk_audit(row, action="update", change="retired", actor=actor, request=request, via=via)
    return row, True


def kiosk_heartbeat(*, kiosk: Kiosk, info: dict[str, Any]) -> Kiosk:
    now = timezone.now()
    Kiosk.objects.filter(pk=kiosk.pk).update(last_heartbeat_at=now, last_heartbeat_info=info)
    kiosk.last_heartbeat_at = now
    kiosk.last_heartbeat_info = info
    return kiosk


def _kiosk_dispense(kiosk: Kiosk, dispense_id: int) -> Dispense:
    dispense = Dispense.objects.filter(pk=dispense_id, kiosk=kiosk).first()
    if dispense is None:
        raise NotFound(_("Dispense not found."), code="dispense_not_found")
    return dispense


def kiosk_call_request_create(
    *, kiosk: Kiosk, dispense_id: int | None = None, message: str = ""
) -> KioskCallRequest:
    dispense = _kiosk_dispense(kiosk, dispense_id) if dispense_id is not None else None
    return KioskCallRequest.objects.create(
        kiosk=kiosk, pharmacy_id=kiosk.pharmacy_id, dispense=dispense, message=message[:300]
    )


def kiosk_call_request_answer(*, user: User, call_id: int) -> KioskCallRequest:
    pharmacy = _require_pharmacist(user)
    # Conditional UPDATE: two pharmacists clicking at once, one answer recorded.
    KioskCallRequest.objects.filter(
        pk=call_id, pharmacy=pharmacy, status=KioskCallRequest.Status.OPEN
    ).update(status=KioskCallRequest.Status.ANSWERED, answered_by=user, answered_at=timezone.now())
    call = KioskCallRequest.objects.filter(pk=call_id, pharmacy=pharmacy).first()
    if call is None:
        raise NotFound(_("Call request not found."), code="call_not_found")
    return call
