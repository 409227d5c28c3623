"""The audit classification of pharmacy's URLs (collected by accounts.audit.registry).

Exact names win over globs; among globs the first listed wins, so a specific glob goes before a
broader one."""

from accounts.audit import Target

AUDITED: dict[str, Target] = {
    # portal (pharmacy/urls.py)
    "pharmacy:queue": Target("prescription"),
    "pharmacy:prescription_*": Target("prescription"),
    "pharmacy:request": Target("prescription"),
    "pharmacy:dispenses": Target("dispense"),
    "pharmacy:dispense_*": Target("dispense"),
    "pharmacy:calls": Target("call_request"),
    "pharmacy:call_*": Target("call_request"),
    # API, staff and kiosk (pharmacy/api_urls.py)
    "pharmacy-prescription-fhir": Target("prescription", action="export"),
    "pharmacy-prescription-*": Target("prescription"),
    "pharmacy-kiosk-dispense*": Target("dispense"),
    "pharmacy-kiosk-call-request": Target("call_request"),
}

EXEMPT: dict[str, str] = {
    "pharmacy-medication-list": "medication catalogue, no patient data",
    "pharmacy-kiosk-heartbeat": "kiosk liveness ping every few seconds, no patient data",
    "pharmacy:stock": "kiosk stock levels, no patient data",
    "pharmacy:kiosk_simulator": "static simulator page; the API calls it makes are audited",
    "pharmacy:kiosk*": "kiosk management pages, no patient data",
}
