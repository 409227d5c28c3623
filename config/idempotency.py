"""The Idempotency-Key protocol, for API views that must not act twice on a retried request (after
pretix's api/middleware.py, applied per view with ``@idempotent``).

The client sends ``Idempotency-Key: <1-100 printable ASCII characters>``, a new key per attempt.
The first request with a key runs, and its answer (status and body) is kept: a retry with the same
key and body gets that answer again, marked ``Idempotent-Replayed: true``, without running; the
same key while the first request is still running is a 409; the same key with another body or on
another endpoint is a 422. A refusal (a 4xx: a service error, invalid input) is kept like a
success, so a retry never changes the outcome. A 429 or an unexpected error frees the key
instead: neither is the answer to the request for ever, and a later retry runs again.

Where the answers are kept, and for whom, is the store's business (``IdempotencyStore``): the
pharmacy app keeps them per kiosk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, Protocol

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import InvalidInput

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,100}$")


def key_parameter(*, per: str = "attempt") -> OpenApiParameter:
    """The header as the OpenAPI schema documents it; ``per`` names what one key stands for."""
    return OpenApiParameter(
        KEY_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description=f"A unique key per {per} (e.g. a UUID). A retry with the same key and body "
        "gets the original answer; the same key still in flight is a 409; the same key with "
        "another body is a 422.",
    )


Replay = tuple[int, Any]  # the kept answer: (status, body)


class IdempotencyStore(Protocol):
    """Keeps the answers. ``begin`` claims a key so that a concurrent duplicate cannot also run:
    the claim must be visible to other transactions before the view runs."""

    def begin(
        self, request: Request, *, key: str, method_path: str, fingerprint: str
    ) -> tuple[Any, Replay | None]:
        """(record, None) for a new key, or (None, (status, body)) to replay a kept answer. Raises
        a ServiceError while the key is in flight (409) or for another request (422)."""
        ...

    def finish(self, record: Any, *, status: int, body: Any) -> None: ...

    def abort(self, record: Any) -> None:
        """Forget the claim, so that a retry runs again."""
        ...


def request_fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def json_safe(body: Any) -> Any:
    """The answer as kept for replays and returned: plain JSON values, and no NUL anywhere
    (PostgreSQL's jsonb cannot hold \\u0000; a 400 naming an unknown field "a\\0b" could not be
    stored). NUL becomes U+FFFD, keys included."""
    return _without_nul(json.loads(JSONRenderer().render(body)))


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def idempotency_key(request: Request) -> str:
    """The request's key; a missing or malformed one is a 400 (before anything is claimed)."""
    key = request.headers.get(KEY_HEADER, "")
    if not _KEY_RE.match(key):
        raise InvalidInput(
            _("An Idempotency-Key header (1-100 printable characters) is required."),
            code="idempotency_key_required",
        )
    return key


def _kept(status: int) -> bool:
    return status < 500 and status != 429


def _error_response(view: APIView, exc: Exception) -> Response | None:
    """What the API answers for this error (the view's exception handler), or None if it is
    unexpected."""
    handler = view.get_exception_handler()
    return handler(exc, view.get_exception_handler_context())


ViewMethod = Callable[..., Response]


def idempotent(
    store: IdempotencyStore, *, per: str = "attempt"
) -> Callable[[ViewMethod], ViewMethod]:
    """Run an APIView method (``post``) under the Idempotency-Key protocol, the header required.

    The method returns a DRF Response; its status and body are what is kept and replayed (its
    other headers are not). An error it raises is kept as the API would answer it (the view's
    exception handler): a service error's ``{"detail", "code"}``, a ValidationError's per-field
    lists. The key is claimed before the method runs and the answer stored after it returns, each
    committed on its own, so that a concurrent duplicate is told at once (409) instead of waiting
    for the first request to end: no transaction may wrap the view (ATOMIC_REQUESTS). ``per`` is
    for the schema (``key_parameter``)."""

    def decorate(method: ViewMethod) -> ViewMethod:
        @functools.wraps(method)
        def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
            key = idempotency_key(request)
            record, replay = store.begin(
                request,
                key=key,
                method_path=f"{request.method} {request.path}",
                fingerprint=request_fingerprint(request.data),
            )
            if replay is not None:
                response = Response(replay[1], status=replay[0])
                response[REPLAYED_HEADER] = "true"
                return response
            try:
                response = method(view, request, *args, **kwargs)
            except Exception as exc:
                answer = _error_response(view, exc)
                if answer is None or not _kept(answer.status_code):
                    store.abort(record)
                    raise
                response = answer
            if not _kept(response.status_code):
                store.abort(record)
                return response
            body = json_safe(response.data)  # every kept answer, errors included
            store.finish(record, status=response.status_code, body=body)
            return Response(body, status=response.status_code)

        return extend_schema(parameters=[key_parameter(per=per)])(wrapper)

    return decorate
