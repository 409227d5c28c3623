"""How the page words its figures (no database)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from dashboard.presenters import NO_DATA, duration_text, wait_texts


def _referrals(median: dt.timedelta | None, mean: dt.timedelta | None) -> dict:
    return {"median_to_accept": median, "mean_to_accept": mean}


@pytest.mark.parametrize(
    ("lang", "zero", "mean"), [("en", "0.0 hours", "1.7 hours"), ("ko", "0.0시간", "1.7시간")]
)
def test_a_median_of_zero_hours_is_a_value_like_the_mean(lang, zero, mean):
    # Two referrals accepted the moment they were sent and one after 5 hours.
    with translation.override(lang):
        assert wait_texts(_referrals(dt.timedelta(0), dt.timedelta(hours=5 / 3))) == (zero, mean)
        assert wait_texts(_referrals(dt.timedelta(0), dt.timedelta(0))) == (zero, zero)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_no_accepted_referral_shows_the_same_mark_for_both(lang):
    with translation.override(lang):
        assert wait_texts(_referrals(None, None)) == (NO_DATA, NO_DATA)
        # Never one of each, whatever the selector hands over.
        assert wait_texts(_referrals(None, dt.timedelta(0))) == (NO_DATA, NO_DATA)
        assert wait_texts(_referrals(dt.timedelta(hours=1), None)) == (NO_DATA, NO_DATA)


def test_durations_read_in_hours_then_days_and_never_as_minus_zero():
    with translation.override("en"):
        assert duration_text(dt.timedelta(minutes=2)) == "0.0 hours"
        assert duration_text(dt.timedelta(seconds=-60)) == "0.0 hours"  # clock skew, not "-0.0"
        assert duration_text(dt.timedelta(hours=60)) == "2.5 days"
        assert duration_text(None) == NO_DATA
