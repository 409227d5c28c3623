"""Brute-force caps on the codes a kiosk presents: per kiosk for unknown codes, per code for known
ones.

Both caps are counted BEFORE the code is evaluated, each by one conditional UPDATE in autocommit
(dispense_reserve runs outside any transaction), so the count is committed whatever the
reservation does next, and concurrent presentations cannot pass a cap: PostgreSQL re-checks an
UPDATE's WHERE on the newest version of a row it had to wait for (READ COMMITTED), so of 50
concurrent claims on one counter at most `cap` find it under the cap."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Case, Exists, F, Q, Value, When
from django.utils.translation import gettext as _

from config.errors import NotFound, TooManyAttempts
from pharmacy.models import DispenseCode, Kiosk, Prescription


def _kiosk_failure_window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.PHARMACY_KIOSK_FAILURE_WINDOW_SECONDS)


def _kiosk_max_failures() -> int:
    return settings.PHARMACY_KIOSK_MAX_CODE_FAILURES


def _kiosk_open(now: dt.datetime) -> Q:
    """A kiosk takes codes unless its current window already holds `cap` unknown codes."""
    return (
        Q(code_failures_window_start__isnull=True)
        | Q(code_failures_window_start__lt=now - _kiosk_failure_window())
        | Q(code_failures__lt=_kiosk_max_failures())
    )


def _kiosk_rate_limited() -> TooManyAttempts:
    return TooManyAttempts(
        _("Too many unknown codes at this kiosk; wait a few minutes."), code="kiosk_rate_limited"
    )


def _kiosk_check_rate(kiosk: Kiosk, now: dt.datetime) -> None:
    """Early 429 from the row read at authentication, without a query. Only a shortcut: the count
    never falls within a window, so a kiosk closed in that row is closed now; one open in it is
    checked again by the conditional UPDATEs of ``_count_presentation``."""
    start = kiosk.code_failures_window_start
    if (
        start is not None
        and now - start < _kiosk_failure_window()
        and kiosk.code_failures >= _kiosk_max_failures()
    ):
        raise _kiosk_rate_limited()


def _count_presentation(*, kiosk: Kiosk, code_hash: str, now: dt.datetime) -> None:
    """Count one presentation of a code at a kiosk before it is evaluated; raise 429 or 404 if it
    must not be. Call outside any transaction (its counts must survive the reservation's rollback).

    A known code of the kiosk's pharmacy: one UPDATE claims one of its PHARMACY_CODE_MAX_ATTEMPTS,
    only while the kiosk is open. This is the hot path's only counting statement. The kiosk's
    openness is read in the statement's snapshot: a presentation that saw the kiosk open is
    ordered before the unknown code that closed it, so a right guess in a burst of wrong ones is
    either before the cap or refused (429), never evaluated past it.
    An unknown code (or one of another pharmacy): the kiosk's counter is raised only while under
    PHARMACY_KIOSK_MAX_CODE_FAILURES; the 404 is answered only if this request's UPDATE counted it,
    so a window holds at most `cap` 404s per kiosk, however many guesses arrive at once."""
    max_attempts = settings.PHARMACY_CODE_MAX_ATTEMPTS
    open_q = _kiosk_open(now)
    claimed = (
        DispenseCode.objects.filter(
            code_hash=code_hash,
            attempts__lt=max_attempts,
            # On the foreign-key column (an IN, not a join), so that the UPDATE stays a plain
            # WHERE on the code row, which is what PostgreSQL re-checks after a row-lock wait.
            prescription__in=Prescription.objects.filter(pharmacy_id=kiosk.pharmacy_id).values(
                "pk"
            ),
        )
        .filter(Exists(Kiosk.objects.filter(open_q, pk=kiosk.pk)))
        .update(attempts=F("attempts") + 1)
    )
    if claimed:
        return
    # Refused or unknown (the rare path).
    known = DispenseCode.objects.filter(
        code_hash=code_hash, prescription__pharmacy_id=kiosk.pharmacy_id
    ).exists()
    if known:
        if not Kiosk.objects.filter(open_q, pk=kiosk.pk).exists():
            raise _kiosk_rate_limited()
        raise TooManyAttempts(
            _("This code has been tried too often; ask the pharmacist for a new one."),
            code="code_locked",
        )
    in_window = Q(code_failures_window_start__gte=now - _kiosk_failure_window())
    counted = Kiosk.objects.filter(open_q, pk=kiosk.pk).update(
        code_failures=Case(When(in_window, then=F("code_failures") + 1), default=Value(1)),
        code_failures_window_start=Case(
            When(in_window, then=F("code_failures_window_start")), default=Value(now)
        ),
    )
    if not counted:
        raise _kiosk_rate_limited()
    # A code of another pharmacy is "unknown" here: it cannot be released at this kiosk.
    raise NotFound(_("Unknown code."), code="code_not_found")
