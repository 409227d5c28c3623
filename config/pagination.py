"""The API's one pagination class."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """LimitOffsetPagination with a ceiling on ``limit``: a ``?limit=`` past PostgreSQL's bigint
    must never reach the database (docs/reliability.md, API fuzzing); a larger limit is read as
    the maximum, as DRF does for any cutoff.
    Offsets need no ceiling: DRF answers an empty page for an offset past the count before it
    queries the rows."""

    max_limit = 200
