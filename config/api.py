"""The API's exception handler: service errors and Django validation errors become 4xx, never 500."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ServiceError


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, UnicodeDecodeError):
        # Invalid UTF-8 in a body or query string is the client's fault, not ours.
        return drf_exception_handler(ParseError("Request is not valid UTF-8."), context)
    return drf_exception_handler(exc, context)


def not_found_handler(request, exception=None):
    """handler404: an /api/ URL that matches no pattern (e.g. a negative id, which the `int`
    converter refuses) answers JSON like every other API error, not the portal's HTML page."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)
