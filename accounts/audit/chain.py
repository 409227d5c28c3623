"""Writing an audit event, and the hash chain that makes the trail tamper-evident.

Rows form a hash chain: ``hash = sha256(prev_hash + canonical_json(fields))`` where ``prev_hash``
is the hash of the row before it (``GENESIS`` for the first). Editing, inserting or deleting a row
in the middle breaks every hash from there on; ``manage.py verify_audit_chain`` recomputes the
chain and names the first broken row. The table is also append-only: the model and its queryset
refuse update/delete, the admin has no change/delete permission, and on PostgreSQL a trigger
raises on UPDATE or DELETE whatever the client.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

if TYPE_CHECKING:
    from django.db.models import Field

GENESIS = "0" * 64

HASHED_FIELDS = (
    "created_at",
    "actor_type",
    "actor_id",
    "actor_username",
    "kiosk_id",
    "action",
    "object_type",
    "object_ids",
    "url_name",
    "path",
    "method",
    "status_code",
    "ip",
    "user_agent",
    "extra",
)


def _clean_ip(value: str) -> str | None:
    value = value.strip()
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    return clean_ipv6_address(value) if ip.version == 6 else str(ip)


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, unless ``AUDIT_TRUSTED_PROXY_COUNT`` proxies we run sit in front: then the
    address the outermost trusted proxy saw, counted from the right of X-Forwarded-For (entries
    to its left are whatever the client chose to send). Also axes' AXES_CLIENT_IP_CALLABLE, so
    that lockouts and the audit agree on who is who."""
    proxies = settings.AUDIT_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            p for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
        ]
        if len(forwarded) >= proxies:
            ip = _clean_ip(forwarded[-proxies])
            if ip:
                return ip
    return _clean_ip(request.META.get("REMOTE_ADDR", ""))


def _actor(user: Any) -> dict[str, Any]:
    kiosk = getattr(user, "kiosk", None)
    if kiosk is not None and not getattr(user, "pk", None):
        return {
            "actor_type": "kiosk",
            "actor_id": None,
            "kiosk_id": str(kiosk.kiosk_id)[:32],
            "actor_username": str(getattr(user, "username", ""))[:150],
        }
    if user is not None and getattr(user, "is_authenticated", False):
        return {
            "actor_type": "user",
            "actor_id": user.pk,
            "kiosk_id": "",
            "actor_username": str(user.get_username())[:150],
        }
    return {"actor_type": "anonymous", "actor_id": None, "kiosk_id": "", "actor_username": ""}


def canonical(fields: dict[str, Any]) -> str:
    """The bytes that are hashed: sorted keys, no whitespace, UTC timestamps with microseconds."""
    values = {k: fields.get(k) for k in HASHED_FIELDS}
    created = values["created_at"]
    if isinstance(created, dt.datetime):
        values["created_at"] = created.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def compute_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(fields)).encode()).hexdigest()


def audit_record(
    *,
    action: str,
    user: Any = None,
    object_type: str = "",
    object_ids: list | None = None,
    request: HttpRequest | None = None,
    url_name: str = "",
    status_code: int | None = None,
    extra: dict | None = None,
    actor_username: str | None = None,
    actor_type: str | None = None,
):
    """Append one event to the chain.

    The race it prevents: two requests finishing at the same moment would both read the same
    last hash and both append after it, forking the chain (verification would then fail for a
    row nobody tampered with). On PostgreSQL the append is one statement that advances the chain
    head row under its row lock (``_append_postgresql``); elsewhere (the SQLite development
    database) a transaction reads the last hash and inserts."""
    from accounts.models import AuditEvent

    fields: dict[str, Any] = {
        "created_at": timezone.now(),
        **_actor(user),
        "action": action,
        "object_type": object_type[:60],
        "object_ids": [str(i)[:40] for i in (object_ids or [])][:100],
        "url_name": url_name[:120],
        "path": request.path[:500] if request is not None else "",
        "method": request.method[:10] if request is not None and request.method else "",
        "status_code": status_code,
        "ip": client_ip(request) if request is not None else None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else "",
        "extra": extra or {},
    }
    if actor_username is not None:
        fields["actor_username"] = actor_username[:150]
    if actor_type is not None:
        fields["actor_type"] = actor_type
    if connection.vendor == "postgresql":
        return _append_postgresql(fields)
    with transaction.atomic():
        prev = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
        return AuditEvent.objects.create(prev_hash=prev, hash=compute_hash(prev, fields), **fields)


# The chain head (one row) is advanced and the event inserted in one statement. The head is an
# upsert: a writer that waited for the row lock updates the newest version of the row (ON
# CONFLICT DO UPDATE always does), so it chains onto the event committed just before it; a
# missing head row (a fresh or flushed database) starts at the last event's hash. The event's id
# is drawn as the INSERT consumes the head's row, i.e. under the row lock, so id order is chain
# order (verify_chain walks ids). PostgreSQL hashes the same bytes as compute_hash:
# sha256(utf8(prev_hash + canonical JSON)).
_HEAD_SQL = """
WITH head AS (
    INSERT INTO accounts_auditchainhead AS h (id, prev_hash, hash)
    SELECT 1, p.last, encode(sha256(convert_to(p.last || %s, 'UTF8')), 'hex')
      FROM (SELECT coalesce(
                (SELECT hash FROM accounts_auditevent ORDER BY id DESC LIMIT 1), %s
            ) AS last) AS p
    ON CONFLICT (id) DO UPDATE
       SET prev_hash = h.hash,
           hash = encode(sha256(convert_to(h.hash || %s, 'UTF8')), 'hex')
    RETURNING h.prev_hash, h.hash
)
"""


@functools.cache
def _append_sql(names: tuple[str, ...]) -> str:
    """The append statement for these event fields, built once per process (every audited
    request runs it). Table, columns and casts come from the model's metadata; every value is a
    parameter."""
    from accounts.models import AuditEvent

    meta = AuditEvent._meta
    # Every event field is a concrete column (never a relation's reverse side), so it has a type.
    fields = [cast("Field[Any, Any]", meta.get_field(name)) for name in names]
    targets = ", ".join(field.column for field in fields)
    # INSERT ... SELECT does not type its literals from the target columns: cast each one.
    values = ", ".join(
        f"%s::{cast(str, field.db_type(connection)).split('(')[0]}" for field in fields
    )
    return f"{_HEAD_SQL} INSERT INTO {meta.db_table} ({targets}, prev_hash, hash) SELECT {values}, head.prev_hash, head.hash FROM head RETURNING id, prev_hash, hash"  # noqa: E501, S608


def _append_postgresql(fields: dict[str, Any]) -> Any:
    from accounts.models import AuditEvent

    meta = AuditEvent._meta
    sql = _append_sql(tuple(fields))
    text = canonical(fields)
    params = [
        cast("Field[Any, Any]", meta.get_field(name)).get_db_prep_save(v, connection)
        for name, v in fields.items()
    ]
    # Inside a caller's transaction a savepoint keeps that transaction usable if the insert
    # fails; in autocommit (the usual case, after the response) the statement is its own
    # transaction and the single round trip stays single.
    with (
        transaction.atomic() if connection.in_atomic_block else nullcontext(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [text, GENESIS, text, *params])
        event_id, prev_hash, hash_ = cursor.fetchone()
    event = AuditEvent(id=event_id, prev_hash=prev_hash, hash=hash_, **fields)
    event._state.adding = False
    event._state.db = connection.alias
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def verify_chain(
    *, batch: int = 2000, on_progress: Callable[[int], None] | None = None
) -> tuple[int, ChainBreak | None]:
    """Recompute the chain in id order. Returns (rows checked, first break or None)."""
    from accounts.models import AuditEvent

    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = list(
            AuditEvent.objects.filter(id__gt=last_id)
            .order_by("id")
            .values("id", "prev_hash", "hash", *HASHED_FIELDS)[:batch]
        )
        if not rows:
            return checked, None
        for row in rows:
            if row["prev_hash"] != prev:
                return checked, ChainBreak(
                    row["id"],
                    "prev_hash does not match the previous row's hash (a row was removed or inserted)",
                )
            if compute_hash(prev, row) != row["hash"]:
                return checked, ChainBreak(
                    row["id"], "hash does not match the row's contents (the row was altered)"
                )
            prev = row["hash"]
            checked += 1
            last_id = row["id"]
        if on_progress is not None:
            on_progress(checked)
