"""Recording requests and sign-ins.

* Every request whose resolved URL is classified as audited (``registry.classify``) and every
  admin page of a registered model: one ``AuditEvent`` row, written by ``AuditMiddleware``
  *after* the response, with the outcome (HTTP status). 401/403 outcomes are recorded with action
  ``denied``; 404s (a foreign or missing object) keep the intended action with outcome 404.
* Sign-ins and failed sign-ins (portal, admin and the API token endpoint) through Django's
  ``user_logged_in`` / ``user_login_failed`` signals (``connect_signals``).

If the audit write fails
------------------------
Reads of patient data fail closed: the response (not yet sent) is replaced by a 503, so no
patient data leaves without a record. Writes have already committed when the row is written (the
audit row records the outcome, so it comes after the view); answering 503 would make the client
retry a write that happened, so the original response is returned and the event is logged at
CRITICAL on the ``eyebridge.audit`` logger with all its fields, the secondary record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from accounts.audit.chain import audit_record, client_ip
from accounts.audit.registry import AUDITED_PREFIXES, Target, classify, full_url_name

logger = logging.getLogger("eyebridge.audit")

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

MAX_PATIENT_IDS = 200


def _object_ids(
    request: HttpRequest, match, response: HttpResponse
) -> tuple[str | None, list[str]]:
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


def _patient_ids(match, target: Target, response: HttpResponse) -> list[str]:
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


def _action(request: HttpRequest, target: Target, match, response: HttpResponse) -> str:
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


def _on_login(sender, request, user, **kwargs) -> None:
    audit_record(
        action="login",
        user=user,
        object_type="user",
        object_ids=[user.pk],
        request=request,
        url_name=_url_name_of(request),
        status_code=None,
    )


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
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


def connect_signals() -> None:
    """Connect the sign-in receivers; called from AccountsConfig.ready. The dispatch_uids make a
    second call a no-op, so a sign-in is never recorded twice."""
    user_logged_in.connect(_on_login, dispatch_uid="accounts.audit.login")
    user_login_failed.connect(_on_login_failed, dispatch_uid="accounts.audit.login_failed")
