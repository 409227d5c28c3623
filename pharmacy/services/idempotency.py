"""Storage of the Idempotency-Key answers to kiosk requests (``IdempotencyRecord``, one per kiosk
and key). The protocol itself (which answers are kept, replays, the header) is
``config.idempotency``; these services are its store for the kiosk API."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import Conflict, Unprocessable
from pharmacy.models import IdempotencyRecord, Kiosk


def idempotency_begin(
    *, kiosk: Kiosk, key: str, method_path: str, fingerprint: str
) -> tuple[IdempotencyRecord | None, tuple[int, Any] | None]:
    """Claim a key. Returns (record, None) for a new key, or (None, (status, body)) to replay the
    stored answer. The insert is its own committed transaction: a concurrent duplicate blocks on
    the unique index until it commits, then sees the record in flight (409)."""
    fields = {"kiosk": kiosk, "key": key, "method_path": method_path, "request_hash": fingerprint}
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint keeps the caller's transaction usable
                return IdempotencyRecord.objects.create(**fields), None
        # Autocommit: one round trip, committed at once (the usual case, a kiosk request).
        return IdempotencyRecord.objects.create(**fields), None
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(kiosk=kiosk, key=key).first()
    if existing is None:  # the first request failed unexpectedly and released the key
        raise Conflict(
            _("A request with this Idempotency-Key is in progress."), code="idempotency_in_flight"
        )
    if existing.request_hash != fingerprint or existing.method_path != method_path:
        raise Unprocessable(
            _("This Idempotency-Key was used with a different request."),
            code="idempotency_key_reused",
        )
    if existing.state == IdempotencyRecord.State.IN_FLIGHT:
        raise Conflict(
            _("A request with this Idempotency-Key is in progress."), code="idempotency_in_flight"
        )
    # A record leaves IN_FLIGHT only through idempotency_finish, which stores the status.
    return None, (cast(int, existing.response_status), existing.response_body)


def idempotency_finish(*, record: IdempotencyRecord, status: int, body: Any) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.DONE, response_status=status, response_body=body
    )


def idempotency_abort(*, record: IdempotencyRecord) -> None:
    """An unexpected error (a 5xx): forget the key so that the kiosk's retry runs again."""
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT).delete()


def idempotency_records_purge(*, older_than: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Forget stored answers older than any kiosk would retry (a kiosk retries for minutes)."""
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
