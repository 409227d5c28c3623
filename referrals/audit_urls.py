"""The audit classification of referrals' URLs (collected by accounts.audit.registry)."""

from accounts.audit import Target

AUDITED: dict[str, Target] = {
    # portal (referrals/urls.py) and API (referrals/api_urls.py)
    "referrals:letter": Target("referral", action="export"),
    "referrals:*": Target("referral"),
    "referrals-fhir": Target("referral", action="export"),
    "referrals-*": Target("referral"),
}

EXEMPT: dict[str, str] = {}
