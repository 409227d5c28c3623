"""The audit classification of grading's URLs (collected by accounts.audit.registry). Every one
shows or changes patient data; the URLs name the screening, so its id is recorded."""

from accounts.audit import Target

AUDITED: dict[str, Target] = {
    # portal (grading/urls.py)
    "grading:queue": Target("grading_case"),
    "grading:read": Target("grading_case"),
    # API (grading/api_urls.py); the export glob goes first, the first matching glob wins.
    "grading-fhir": Target("grading_case", action="export"),
    "grading-*": Target("grading_case"),
}

EXEMPT: dict[str, str] = {}
