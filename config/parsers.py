"""A JSON parser that turns every malformed or abusive body into a 4xx.

DRF's JSONParser reads the whole stream (DATA_UPLOAD_MAX_MEMORY_SIZE does not apply: DRF reads
the request as a file), accepts NaN/Infinity (not JSON; they reach float fields as nan) and lets
a deeply nested document raise RecursionError, a 500. This one:

* reads at most ``API_JSON_MAX_BYTES`` (default DATA_UPLOAD_MAX_MEMORY_SIZE) and answers 413 above;
* requires strict UTF-8 (400 otherwise);
* refuses NaN, Infinity and -Infinity, and numbers that overflow to them such as 1e400 (400);
* refuses nesting deeper than ``API_JSON_MAX_DEPTH`` (default 32; our payloads are 3 deep) (400).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "too_large"


def _reject_constant(name: str) -> Any:
    raise ParseError(f"JSON parse error - {name} is not valid JSON.")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400 overflows to inf without parse_constant
        raise ParseError("JSON parse error - number out of range.")
    return value


def _depth(value: Any, limit: int) -> int:
    """Maximum nesting depth, iteratively (no recursion on attacker-controlled structure)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_JSON_MAX_BYTES
        max_depth = settings.API_JSON_MAX_DEPTH
        if stream is None:
            raise ParseError("JSON parse error - empty body.")
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("JSON parse error - body is not valid UTF-8.") from exc
        try:
            data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if _depth(data, max_depth) > max_depth:
            raise ParseError(f"JSON parse error - nested deeper than {max_depth} levels.")
        return data
