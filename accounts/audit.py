"""The audit trail: who read or changed which patient data, when, from where, with what outcome.

What is recorded
----------------
* Every request whose resolved URL is listed in ``AUDITED_URLS`` below (portal pages, API
  endpoints, FHIR exports, image and heat-map files) and every admin page of a registered model:
  one ``AuditEvent`` row, written by ``AuditMiddleware`` *after* the response, with the outcome
  (HTTP status). 401/403 outcomes are recorded with action ``denied``; 404s (a foreign or missing
  object) keep the intended action with outcome 404.
* Sign-ins and failed sign-ins (portal, admin and the API token endpoint) through Django's
  ``user_logged_in`` / ``user_login_failed`` signals.

Every URL under ``AUDITED_PREFIXES`` must appear in ``AUDITED_URLS`` or ``EXEMPT_URLS`` (with the
reason it carries no patient data); tests/security/test_audit.py walks the URLconf and fails for a
pattern that is in neither, so a new endpoint cannot silently escape auditing. In production an
unlisted URL under those prefixes is audited anyway (``object_type`` "unclassified"): failing
towards a record, not towards silence.

Tamper evidence
---------------
Rows form a hash chain: ``hash = sha256(prev_hash + canonical_json(fields))`` where ``prev_hash``
is the hash of the row before it (``GENESIS`` for the first). Editing, inserting or deleting a row
in the middle breaks every hash from there on; ``manage.py verify_audit_chain`` recomputes the
chain and names the first broken row. The table is also append-only: the model and its queryset
refuse update/delete, the admin has no change/delete permission, and on PostgreSQL a trigger
raises on UPDATE or DELETE whatever the client.

If the audit write fails
------------------------
Reads of patient data fail closed: the response (not yet sent) is replaced by a 503, so no
patient data leaves without a record. Writes have already committed when the row is written (the
audit row records the outcome, so it comes after the view); answering 503 would make the client
retry a write that happened, so the original response is returned and the event is logged at
CRITICAL on the ``eyebridge.audit`` logger with all its fields, the secondary record.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import hashlib
import ipaddress
import json
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import connection, transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

logger = logging.getLogger("eyebridge.audit")

GENESIS = "0" * 64

# URL prefixes whose every pattern must be classified (audited or exempt with a reason).
AUDITED_PREFIXES = (
    "/screening/",
    "/pharmacy/",
    "/referrals/",
    "/dashboard/",
    "/api/v1/",
    "/admin/",
)


@dataclass(frozen=True)
class Target:
    """What an audited URL touches. ``action`` fixes the action for safe methods (``export`` for
    FHIR bundles and CSV exports); otherwise it follows the method."""

    object_type: str
    action: str | None = None


# URL name (namespace:name, fnmatch globs allowed) -> what it touches. Keep sorted by app.
AUDITED_URLS: dict[str, Target] = {
    # screening portal
    "screening:worklist": Target("screening"),
    "screening:patient_list": Target("patient"),
    "screening:patient_create": Target("patient"),
    "screening:patient_detail": Target("patient"),
    "screening:screening_create": Target("screening"),
    "screening:screening_detail": Target("screening"),
    "screening:screening_status": Target("screening"),
    "screening:image_file": Target("screening_image"),
    "screening:heatmap_file": Target("eye_result"),
    # screening API
    "api-patients": Target("patient"),
    "api-patient": Target("patient"),
    "api-screenings": Target("screening"),
    "api-screening": Target("screening"),
    "api-screening-fhir": Target("screening", action="export"),
    # pharmacy portal
    "pharmacy:queue": Target("prescription"),
    "pharmacy:prescription_*": Target("prescription"),
    "pharmacy:request": Target("prescription"),
    "pharmacy:dispenses": Target("dispense"),
    "pharmacy:dispense_*": Target("dispense"),
    "pharmacy:calls": Target("call_request"),
    "pharmacy:call_*": Target("call_request"),
    # pharmacy API (staff and kiosk)
    "pharmacy-prescription-fhir": Target("prescription", action="export"),
    "pharmacy-prescription-*": Target("prescription"),
    "pharmacy-kiosk-dispense*": Target("dispense"),
    "pharmacy-kiosk-call-request": Target("call_request"),
    # referrals portal and API
    "referrals:*": Target("referral"),
    "referrals-fhir": Target("referral", action="export"),
    "referrals-*": Target("referral"),
    # dashboards: every export is audited as such
    "dashboard:*export*": Target("dashboard", action="export"),
    "dashboard:*": Target("dashboard"),
}

# URL name -> why it is not audited (it serves no patient data).
EXEMPT_URLS: dict[str, str] = {
    "api-token": "sign-in: recorded as login/login_failed by the authentication signals",
    "api-schema": "OpenAPI schema, no data",
    "api-docs": "API documentation page, no data",
    "api-redoc": "API documentation page, no data",
    "pharmacy-medication-list": "medication catalogue, no patient data",
    "pharmacy-kiosk-heartbeat": "kiosk liveness ping every few seconds, no patient data",
    "pharmacy:stock": "kiosk stock levels, no patient data",
    "pharmacy:kiosk_simulator": "static simulator page; the API calls it makes are audited",
    "pharmacy:kiosk*": "kiosk management pages, no patient data",
    # Admin pages that are not a model's pages; model pages are audited through ADMIN_VIEWS.
    "admin:index": "admin home, no data",
    "admin:login": "sign-in: recorded by the authentication signals",
    "admin:logout": "sign-out, no data",
    "admin:password_change": "own password, no patient data",
    "admin:password_change_done": "no data",
    "admin:jsi18n": "translations, no data",
    "admin:app_list": "list of models, no data",
    "admin:autocomplete": "autocomplete is only reachable with view permission; low-volume lookups",
    "admin:view_on_site": "a redirect to the object's portal page, which is audited itself",
}

# Admin model views: <app_label>_<model>_<view>.
ADMIN_VIEWS = ("changelist", "add", "change", "delete", "history")

ACTION_BY_METHOD = {
    "GET": "read",
    "HEAD": "read",
    "OPTIONS": "read",
    "POST": "create",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
}
# URL kwargs that name an object, and the type they name.
ID_KWARGS = {
    "patient_id": "patient",
    "screening_id": "screening",
    "image_id": "screening_image",
    "result_id": "eye_result",
    "prescription_id": "prescription",
    "dispense_id": "dispense",
    "referral_id": "referral",
    "object_id": None,
    "pk": None,
}


def _match(table: dict[str, Any], name: str) -> Any:
    if name in table:
        return table[name]
    for pattern, value in table.items():
        if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern):
            return value
    return None


def full_url_name(match) -> str:  # noqa: ANN001 - django.urls.ResolverMatch
    return f"{match.namespace}:{match.url_name}" if match.namespace else (match.url_name or "")


def _admin_model(url_name: str) -> str | None:
    """``app_model`` for an admin page of a registered model (its standard views and any custom
    view a ModelAdmin adds under its own prefix, e.g. a CSV import), else None."""
    if not url_name.startswith("admin:"):
        return None
    from django.contrib import admin

    view = url_name.removeprefix("admin:")
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if view.startswith(prefix):
            return prefix[:-1]
    for suffix in ADMIN_VIEWS:
        if view.endswith("_" + suffix):
            return view.removesuffix("_" + suffix)
    return None


def classify(*, path: str, url_name: str) -> Target | None:
    """What an URL touches, or None when it is not audited. Pure (no request), so that the test
    can walk the URLconf through it. Every admin page of a model is audited (reads included):
    admin access is rare and powerful."""
    if not path.startswith(AUDITED_PREFIXES):
        return None
    model = _admin_model(url_name)
    if model is not None:
        return Target(f"admin:{model}")
    target = _match(AUDITED_URLS, url_name)
    if target is not None:
        return target
    if _match(EXEMPT_URLS, url_name) is not None:
        return None
    return Target("unclassified")


def is_classified(url_name: str) -> bool:
    """Listed explicitly (audited or exempt), for the URLconf walk test."""
    if _admin_model(url_name) is not None:
        return True
    return _match(AUDITED_URLS, url_name) is not None or _match(EXEMPT_URLS, url_name) is not None


# --- who and from where --------------------------------------------------------------------
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
    proxies = getattr(settings, "AUDIT_TRUSTED_PROXY_COUNT", 0)
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


# --- the chain -----------------------------------------------------------------------------
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
    fields = [meta.get_field(name) for name in names]
    targets = ", ".join(field.column for field in fields)
    # INSERT ... SELECT does not type its literals from the target columns: cast each one.
    values = ", ".join(f"%s::{field.db_type(connection).split('(')[0]}" for field in fields)
    return f"{_HEAD_SQL} INSERT INTO {meta.db_table} ({targets}, prev_hash, hash) SELECT {values}, head.prev_hash, head.hash FROM head RETURNING id, prev_hash, hash"  # noqa: E501, S608


def _append_postgresql(fields: dict[str, Any]) -> Any:
    from accounts.models import AuditEvent

    meta = AuditEvent._meta
    sql = _append_sql(tuple(fields))
    text = canonical(fields)
    params = [meta.get_field(name).get_db_prep_save(v, connection) for name, v in fields.items()]
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


# --- recording requests --------------------------------------------------------------------
def _object_ids(
    request: HttpRequest, match, response: HttpResponse
) -> tuple[str | None, list[str]]:  # noqa: ANN001
    ids: list[str] = []
    kind = None
    for kwarg, type_name in ID_KWARGS.items():
        if kwarg in match.kwargs:
            ids.append(str(match.kwargs[kwarg]))
            kind = kind or type_name
    explicit = getattr(request, "audit_object_ids", None)
    if explicit:
        ids.extend(str(i) for i in explicit)
    if request.method == "POST" and match.namespace == "admin":
        ids.extend(request.POST.getlist("_selected_action")[:100])
    data = getattr(response, "data", None)
    if response.status_code == 201 and isinstance(data, dict) and "id" in data:
        ids.append(str(data["id"]))
    return kind, ids


MAX_PATIENT_IDS = 200


def _patient_ids(match, target: Target, response: HttpResponse) -> list[str]:  # noqa: ANN001
    """The patients whose data the response carried: the URL's ``patient_id`` and, for API
    responses, each object's ``patient`` (or the object itself on patient endpoints), read from
    the serialised data already in memory (no query). A list page thus records which patients
    it showed, which is what "who saw patient X" needs."""
    found: list[str] = []
    if "patient_id" in match.kwargs:
        found.append(str(match.kwargs["patient_id"]))
    data = getattr(response, "data", None)
    if response.status_code >= 300 or data is None:
        return found
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        items = data["results"]
    elif isinstance(data, dict):
        items = [data]
    else:
        items = data if isinstance(data, list) else []
    for item in items[:MAX_PATIENT_IDS]:
        if not isinstance(item, dict):
            continue
        patient = item.get("patient", item.get("patient_id"))
        if isinstance(patient, dict):
            patient = patient.get("id")
        if patient is None and target.object_type == "patient":
            patient = item.get("id")
        if isinstance(patient, int) and str(patient) not in found:
            found.append(str(patient))
    return found[:MAX_PATIENT_IDS]


def _action(request: HttpRequest, target: Target, match, response: HttpResponse) -> str:  # noqa: ANN001
    if response.status_code in (401, 403):
        return "denied"
    explicit = getattr(request, "audit_action", None)
    if explicit:
        return explicit
    method = (request.method or "GET").upper()
    if method in ("GET", "HEAD", "OPTIONS"):
        return target.action or "read"
    if method == "POST":
        if match.namespace == "admin":
            view = match.url_name or ""
            if view.endswith("_delete"):
                return "delete"
            if view.endswith("_add"):
                return "create"
            return "update"
        # POST to an existing object's URL (approve, accept, cancel) changes it.
        return "update" if any(k in match.kwargs for k in ID_KWARGS) else "create"
    return ACTION_BY_METHOD.get(method, "read")


class AuditMiddleware:
    """Writes one AuditEvent for each request to an audited URL, after the response.

    Views may set ``request.audit_action`` (e.g. ``export``) and ``request.audit_object_ids`` to
    describe what they did more precisely; the middleware still writes exactly one row."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is None or not request.path.startswith(AUDITED_PREFIXES):
            return response
        url_name = full_url_name(match)
        target = classify(path=request.path, url_name=url_name)
        if target is None:
            return response
        kind, ids = _object_ids(request, match, response)
        action = _action(request, target, match, response)
        extra: dict[str, Any] = {}
        if action == "denied":
            extra["intended"] = ACTION_BY_METHOD.get((request.method or "").upper(), "read")
        patients = _patient_ids(match, target, response)
        if patients:
            extra["patient_ids"] = patients
        try:
            audit_record(
                action=action,
                user=getattr(request, "user", None),
                object_type=target.object_type
                if target.object_type != "unclassified" or not kind
                else kind,
                object_ids=ids,
                request=request,
                url_name=url_name,
                status_code=response.status_code,
                extra=extra,
            )
        except Exception:
            logger.critical(
                "audit write failed: %s",
                json.dumps(
                    {
                        "action": action,
                        "user": str(getattr(request, "user", "")),
                        "path": request.path,
                        "method": request.method,
                        "status": response.status_code,
                        "ids": ids,
                        "ip": client_ip(request),
                        "at": timezone.now().isoformat(),
                    }
                ),
                exc_info=True,
            )
            if (request.method or "GET").upper() in ("GET", "HEAD", "OPTIONS"):
                # Fail closed for reads: the patient data in this response has not left yet.
                if request.path.startswith("/api/"):
                    return JsonResponse(
                        {
                            "detail": "Audit trail unavailable; try again later.",
                            "code": "audit_unavailable",
                        },
                        status=503,
                    )
                return HttpResponse(
                    "Audit trail unavailable; try again later.",
                    status=503,
                    content_type="text/plain; charset=utf-8",
                )
        return response


# --- sign-ins --------------------------------------------------------------------------------
@receiver(user_logged_in, dispatch_uid="accounts.audit.login")
def _on_login(sender, request, user, **kwargs) -> None:  # noqa: ANN001
    audit_record(
        action="login",
        user=user,
        object_type="user",
        object_ids=[user.pk],
        request=request,
        url_name=_url_name_of(request),
        status_code=None,
    )


@receiver(user_login_failed, dispatch_uid="accounts.audit.login_failed")
def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:  # noqa: ANN001
    username = str((credentials or {}).get("username", ""))[:150]
    event_extra = {}
    if request is not None and getattr(request, "axes_locked_out", False):
        event_extra["locked_out"] = True
    # The attempted username is recorded as typed: it is how an admin finds an attack on an account.
    audit_record(
        action="login_failed",
        user=None,
        actor_username=username,
        object_type="user",
        request=request,
        url_name=_url_name_of(request),
        extra=event_extra,
    )


def _url_name_of(request: HttpRequest | None) -> str:
    match = getattr(request, "resolver_match", None) if request is not None else None
    return full_url_name(match) if match is not None else ""
