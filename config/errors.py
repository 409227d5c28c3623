"""Typed errors raised by services. The API maps each to its status; portal views show the message.

A service raises before it writes anything, or inside a transaction that the error rolls back, so a
rejected request never leaves half-written data.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message, "code": self.code}
        if self.field:
            body["field"] = self.field
        body.update(self.details)
        return body


class InvalidInput(ServiceError):
    status_code = 400
    default_code = "invalid"


class Forbidden(ServiceError):
    status_code = 403
    default_code = "forbidden"


class NotFound(ServiceError):
    status_code = 404
    default_code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    default_code = "conflict"


class Unprocessable(ServiceError):
    status_code = 422
    default_code = "unprocessable"


class TooManyAttempts(ServiceError):
    status_code = 429
    default_code = "too_many_attempts"
