"""The API's one pagination class."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """LimitOffsetPagination with a ceiling on ``limit``. Without one, a ``?limit=`` past
    PostgreSQL's bigint reached the database and was a 500 (the 1,000-example API fuzzing,
    docs/reliability.md); a larger limit is now read as the maximum, as DRF does for any cutoff.
    Offsets need no ceiling: DRF answers an empty page for an offset past the count before it
    queries the rows."""

    max_limit = 200
