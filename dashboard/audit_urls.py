"""The audit classification of the dashboard's URLs (collected by accounts.audit.registry)."""

from accounts.audit import Target

AUDITED: dict[str, Target] = {
    # Every export is audited as such; the export glob goes first, the first matching glob wins.
    "dashboard:*export*": Target("dashboard", action="export"),
    "dashboard:*": Target("dashboard"),
}

EXEMPT: dict[str, str] = {}
