"""The access-control matrix: who may reach which endpoint, for which object.

Two organisations, side A and side B. Each side has a site (health worker, patients, screenings
with a photo and a heat map), a pharmacy linked to that site (pharmacist, kiosk, prescriptions, a
dispense) and a hospital (staff, a referral of the side's screening). The actors are the issue's:
anonymous, the health workers of A and of B, the pharmacist (A), the hospital staff of A and of B,
the grader (of a reading centre that reads for site A), the kiosk (A) and a platform admin. Each
side's screening is also a grading case.

For an actor, "own" is the object of its own side (B for hw_b and staff_b, A for everyone else),
"foreign" the other side's, and "missing" an id that does not exist. An entry of ``MATRIX`` says,
for one URL name: the methods to try, which object its URL (or query string / body) names, the body
of an unsafe request (valid for the own object, so that an allowed request is told apart from a
refused one), and the expected outcome per actor as "own foreign missing" (one token = all three).

Outcomes: ``ok`` = allowed (any status except 401/403/404/405 and 5xx, and not a redirect to a
sign-in page: 2xx, a redirect after a successful form, 400 invalid input, 409/422 valid but wrong
state); ``login`` = 302 to the portal sign-in page; ``admin_login`` = 302 to the admin's sign-in;
or an exact status code.

Policy (docs/reliability.md, "Access-control matrix"):
- anonymous: API 401 (TokenAuthentication answers first: a 401 with WWW-Authenticate), portal pages
  302 to the sign-in page, photos/heat maps 401 (they are fetched by API clients too).
- another organisation's object, and a missing id: 404 everywhere, never 403 (a 403 would confirm
  that the id exists).
- wrong role on a portal page: 403 ("this page is not for your role"), except the referral pages,
  whose lookups are scoped by the selector (404).
- wrong role on the API: the scoped selectors find nothing, so detail reads are 404 and lists are
  200 with zero rows; actions reserved to a role are 403 where the service checks the role first.
- kiosk credentials on staff endpoints: 401 (staff endpoints do not accept the Kiosk scheme), on
  portal pages: 302 to sign-in; staff credentials on kiosk endpoints: 401.
- the platform admin reads every organisation's patient data (admin pages, API) but acts in no
  organisation's role (pharmacy and hospital actions are 403/404).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

MISSING_ID = 2_000_000_000

ACTORS = [
    "anonymous",
    "hw_a",
    "hw_b",
    "pharmacist",
    "staff_a",
    "staff_b",
    "grader",
    "kiosk",
    "admin",
]
SIGNED_IN = ("hw", "pharmacist", "staff", "grader", "admin")
SIDE = {"hw_b": "B", "staff_b": "B"}  # everyone else's "own" side is A
OBJECT_KINDS = ("own", "foreign", "missing")


def side_of(actor: str) -> str:
    return SIDE.get(actor, "A")


def other(side: str) -> str:
    return "B" if side == "A" else "A"


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str  # URL name, with namespace
    kind: str  # portal | api | kiosk | public | file | admin
    methods: tuple[str, ...] = ("GET",)
    obj: str | None = None  # object type named by the URL / query / body
    where: str = "path"  # path | query | body
    arg: str = ""  # the URL kwarg, query parameter or body field carrying the object's id
    body: Callable[[dict, int], dict] | None = None  # unsafe requests: body for object id
    multipart: bool = False
    expect: dict[str, str] = dataclasses.field(default_factory=dict)
    list_of: str | None = None  # list endpoint: the object type of its rows (zero foreign rows)

    def expected(self, actor: str, kind: str, method: str) -> str:
        group = {"hw_a": "hw", "hw_b": "hw", "staff_a": "staff", "staff_b": "staff"}.get(
            actor, actor
        )
        spec = next(
            (
                self.expect[k]
                for k in (f"{actor}:{method}", actor, f"{group}:{method}", group)
                if k in self.expect
            ),
            None,
        )
        if spec is None:
            spec = DEFAULTS[self.kind][actor]
        tokens = spec.split()
        if self.obj is None:
            return tokens[0]
        if len(tokens) == 1:
            tokens = tokens * 3
        return dict(zip(OBJECT_KINDS, tokens, strict=True))[kind]


# Per endpoint kind, what each actor gets when the entry says nothing else.
DEFAULTS: dict[str, dict[str, str]] = {
    "portal": {
        "anonymous": "login",
        "kiosk": "login",
        "hw_a": "403",
        "hw_b": "403",
        "pharmacist": "403",
        "staff_a": "403",
        "staff_b": "403",
        "grader": "403",
        "admin": "403",
    },
    "api": {
        "anonymous": "401",
        "kiosk": "401",
        "hw_a": "404",
        "hw_b": "404",
        "pharmacist": "404",
        "staff_a": "404",
        "staff_b": "404",
        "grader": "404",
        "admin": "ok ok 404",
    },
    "kiosk": {
        "anonymous": "401",
        "kiosk": "ok 404 404",
        "hw_a": "401",
        "hw_b": "401",
        "pharmacist": "401",
        "staff_a": "401",
        "staff_b": "401",
        "grader": "401",
        "admin": "401",
    },
    "public": dict.fromkeys(ACTORS, "ok"),
    "file": {
        "anonymous": "401",
        "kiosk": "401",
        "hw_a": "ok 404 404",
        "hw_b": "ok 404 404",
        "pharmacist": "ok 404 404",
        "staff_a": "ok 404 404",
        "staff_b": "ok 404 404",
        # The photos of the sites the grader's reading centre reads for (screening.extensions).
        "grader": "ok 404 404",
        "admin": "ok ok 404",
    },
    "admin": {
        "anonymous": "admin_login",
        "kiosk": "admin_login",
        "hw_a": "admin_login",
        "hw_b": "admin_login",
        "pharmacist": "admin_login",
        "staff_a": "admin_login",
        "staff_b": "admin_login",
        "grader": "admin_login",
        "admin": "ok",
    },
}

OWN = "ok 404 404"


def _counselling() -> dict:
    block = {
        "dose": "1 drop",
        "frequency": "4 times a day",
        "duration": "2 weeks",
        "warnings": "none",
    }
    return {"ko": block, "en": block}


def _jpeg() -> bytes:
    import cv2
    from skimage import data

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(data.retina(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    return buf.tobytes()


_JPEG: list[bytes] = []


def retina_jpeg() -> io.BytesIO:
    if not _JPEG:
        _JPEG.append(_jpeg())
    f = io.BytesIO(_JPEG[0])
    f.name = "left.jpg"
    return f


E = Entry
# Valid for every referral transition (each serializer ignores the fields it does not know).
REFERRAL_BODY = {
    "reason": "matrix",
    "note": "matrix",
    "diagnosis": "matrix",
    "appointment_at": "2030-01-15T10:00:00+09:00",
    "appointment": "2030-01-15T10:00",
}
# The API refuses fields an action does not take (StrictSerializer), so each action gets its own.
REFERRAL_API_BODY = {
    "accept": {"appointment_at": "2030-01-15T10:00:00+09:00", "note": "matrix"},
    "decline": {"reason": "matrix"},
    "attended": {"note": "matrix"},
    "no-show": {"note": "matrix"},
    "complete": {"diagnosis": "matrix", "notes": "matrix"},
    "cancel": {"reason": "matrix"},
}
# A read of the world's screening (its left eye only) that agrees with the AI: valid for the own case.
GRADING_API_BODY = {
    "eyes": [{"eye": "left", "gradable": True, "findings": []}],
    "next_step": "medication",
    "note": "matrix",
    "stage": "primary",
}
GRADING_PORTAL_BODY = {
    "stage": "primary",
    "left_gradable": "yes",
    "next_step": "medication",
    "note": "matrix",
}
MATRIX: list[Entry] = [
    # --- accounts and the home page ---
    # The home page redirects each role to its portal.
    E(
        "home",
        "portal",
        expect={"hw": "ok", "pharmacist": "ok", "staff": "ok", "admin": "ok", "grader": "ok"},
    ),
    E("accounts:login", "public", ("GET", "POST"), body=lambda w, i: {}),
    E(
        "accounts:logout",
        "public",
        ("POST",),
        body=lambda w, i: {},
        expect=dict.fromkeys(ACTORS, "login"),
    ),
    E(
        "accounts:set_language",
        "public",
        ("POST",),
        body=lambda w, i: {"language": "en", "next": "/"},
    ),
    E("accounts:otp_setup", "portal", expect={"pharmacist": "ok", "admin": "ok"}),
    # Notifications are a person's own: the side's health worker is the recipient of its
    # notification; nobody else (the admin included) reaches it.
    E("accounts:notifications", "portal", expect=dict.fromkeys(SIGNED_IN, "ok")),
    E(
        "accounts:notification_preferences",
        "portal",
        ("GET", "POST"),
        body=lambda w, i: {},
        expect=dict.fromkeys(SIGNED_IN, "ok"),
    ),
    E(
        "accounts:notifications_read_all",
        "portal",
        ("POST",),
        body=lambda w, i: {},
        expect=dict.fromkeys(SIGNED_IN, "ok"),
    ),
    E(
        "accounts:notification_read",
        "portal",
        ("POST",),
        obj="notification",
        arg="notification_id",
        body=lambda w, i: {},
        expect={
            "hw": "ok 404 404",
            **dict.fromkeys(("pharmacist", "staff", "grader", "admin"), "404"),
        },
    ),
    E(
        "accounts:otp_verify",
        "portal",
        expect={"hw": "ok", "pharmacist": "ok", "staff": "ok", "grader": "ok", "admin": "ok"},
    ),
    E("api-token", "public", ("POST",), body=lambda w, i: {}),
    E("api-schema", "public"),
    E("api-docs", "public"),
    E("api-redoc", "public"),
    # --- screening portal ---
    E("screening:worklist", "portal", expect={"hw": "ok", "admin": "ok"}, list_of="screening"),
    E("screening:patient_list", "portal", expect={"hw": "ok", "admin": "ok"}, list_of="patient"),
    E("screening:recall_list", "portal", expect={"hw": "ok", "admin": "ok"}),
    E(
        "screening:patient_consent",
        "portal",
        ("GET", "POST"),
        obj="patient",
        arg="patient_id",
        body=lambda w, i: {},
        expect={
            "hw": OWN,
            "admin": "ok ok 404",
            "pharmacist": "403",
            "staff": "403",
            "grader": "403",
        },
    ),
    E(
        "screening:patient_edit",
        "portal",
        ("GET", "POST"),
        obj="patient",
        arg="patient_id",
        body=lambda w, i: {},
        expect={
            "hw": OWN,
            "admin": "ok ok 404",
            "pharmacist": "403",
            "staff": "403",
            "grader": "403",
        },
    ),
    E(
        "screening:patient_create",
        "portal",
        ("GET", "POST"),
        body=lambda w, i: {},
        expect={"hw": "ok", "admin": "ok"},
    ),
    E(
        "screening:patient_detail",
        "portal",
        obj="patient",
        arg="patient_id",
        expect={
            "hw": OWN,
            "admin": "ok ok 404",
            "pharmacist": "404",
            "staff": "404",
            "grader": "404",
        },
    ),
    E(
        "screening:screening_create",
        "portal",
        ("GET", "POST"),
        obj="patient",
        arg="patient_id",
        body=lambda w, i: {},
        expect={
            "hw": OWN,
            "admin": "ok ok 404",
            "pharmacist": "404",
            "staff": "404",
            "grader": "404",
        },
    ),
    E(
        "screening:screening_detail",
        "portal",
        obj="screening",
        arg="screening_id",
        expect={
            "hw": OWN,
            "admin": "ok ok 404",
            "pharmacist": "404",
            "staff": "404",
            "grader": "404",
        },
    ),
    E(
        "screening:screening_status",
        "portal",
        obj="screening",
        arg="screening_id",
        expect={
            "hw": OWN,
            "admin": "ok ok 404",
            "pharmacist": "404",
            "staff": "404",
            "grader": "404",
        },
    ),
    E("screening:image_file", "file", obj="image", arg="image_id"),
    E("screening:heatmap_file", "file", obj="result", arg="result_id"),
    # --- screening API ---
    E(
        "api-patients",
        "api",
        ("GET", "POST"),
        list_of="patient",
        body=lambda w, i: {
            "name": "Matrix Kim",
            "birth_date": "1950-01-01",
            "sex": "F",
            "consent_given": True,
        },
        expect={
            "hw": "ok",
            "pharmacist:GET": "ok",
            "staff:GET": "ok",
            "admin:GET": "ok",
            "pharmacist:POST": "403",
            "grader:GET": "ok",
            "grader:POST": "403",
            "staff:POST": "403",
            "admin:POST": "403",
        },
    ),
    E("api-patient", "api", obj="patient", arg="patient_id", expect={"hw": OWN}),
    # Consent (issue 16.3). The bodies are incomplete on purpose (no confirmation), so an allowed
    # request is a 400 and the shared patient is neither withdrawn nor erased.
    E(
        "api-patient-consent-withdraw",
        "api",
        ("POST",),
        obj="patient",
        arg="patient_id",
        body=lambda w, i: {},
        expect={"hw": OWN},
    ),
    E(
        "api-patient-erase",
        "api",
        ("POST",),
        obj="patient",
        arg="patient_id",
        body=lambda w, i: {},
        # Only an administrator erases: the health worker's own patient is a 403.
        expect={"hw": "403 404 404"},
    ),
    E(
        "api-screenings",
        "api",
        ("GET",),
        list_of="screening",
        expect={"hw": "ok", "admin": "ok", "pharmacist": "ok", "staff": "ok", "grader": "ok"},
    ),
    # The submission names its patient in the body: a real photo, so that only access decides.
    E(
        "api-screenings",
        "api",
        ("POST",),
        obj="patient",
        where="body",
        arg="patient",
        body=lambda w, i: {"patient": i, "left_image": retina_jpeg()},
        multipart=True,
        expect={"hw": OWN, "admin": "403", "pharmacist": "403", "staff": "403", "grader": "403"},
    ),
    E("api-screening", "api", obj="screening", arg="screening_id", expect={"hw": OWN}),
    E("api-screening-fhir", "api", obj="screening", arg="screening_id", expect={"hw": OWN}),
    # --- pharmacy portal ---
    E("pharmacy:queue", "portal", expect={"pharmacist": "ok"}, list_of="prescription"),
    E(
        "pharmacy:prescription_detail",
        "portal",
        ("GET", "POST"),
        obj="prescription",
        arg="prescription_id",
        body=lambda w, i: {"action": "reject", "reason": ""},
        expect={"pharmacist": OWN},
    ),  # others: 403 (role)
    E(
        "pharmacy:prescription_qr",
        "portal",
        obj="prescription",
        arg="prescription_id",
        expect={
            "pharmacist": OWN,
            "hw": OWN,
            "staff": "404",
            "grader": "404",
            "admin": "ok ok 404",
        },
    ),
    E(
        "pharmacy:stock",
        "portal",
        ("GET", "POST"),
        body=lambda w, i: {},
        expect={"pharmacist": "ok"},
    ),
    E("pharmacy:dispenses", "portal", expect={"pharmacist": "ok"}),
    E(
        "pharmacy:calls",
        "portal",
        ("GET", "POST"),
        body=lambda w, i: {},
        expect={"pharmacist": "ok"},
    ),
    E(
        "pharmacy:request",
        "portal",
        ("GET", "POST"),
        obj="screening",
        where="query",
        arg="screening",
        body=lambda w, i: {},
        expect={"hw": OWN},
    ),
    E("pharmacy:kiosk_simulator", "public"),
    # --- pharmacy API (staff) ---
    E(
        "pharmacy-prescription-list",
        "api",
        list_of="prescription",
        expect={"pharmacist": "ok", "hw": "ok", "staff": "ok", "grader": "ok", "admin": "ok"},
    ),
    E(
        "pharmacy-prescription-request",
        "api",
        ("POST",),
        obj="screening",
        where="body",
        arg="screening",
        body=lambda w, i: {"screening": i, "medication": w["medication"], "quantity": 1},
        expect={"hw": OWN, "pharmacist": "403", "staff": "403", "grader": "403", "admin": "403"},
    ),
    E(
        "pharmacy-prescription-detail",
        "api",
        obj="prescription",
        arg="prescription_id",
        expect={"pharmacist": OWN, "hw": OWN},
    ),
    E(
        "pharmacy-prescription-approve",
        "api",
        ("POST",),
        obj="prescription",
        arg="prescription_id",
        body=lambda w, i: {"counselling": _counselling(), "acknowledge_warnings": True},
        expect={"pharmacist": OWN, "hw": "403", "staff": "403", "grader": "403", "admin": "403"},
    ),
    E(
        "pharmacy-prescription-reject",
        "api",
        ("POST",),
        obj="prescription",
        arg="prescription_id",
        body=lambda w, i: {"reason": "matrix"},
        expect={"pharmacist": OWN, "hw": "403", "staff": "403", "grader": "403", "admin": "403"},
    ),
    E(
        "pharmacy-prescription-cancel",
        "api",
        ("POST",),
        obj="prescription",
        arg="prescription_id",
        body=lambda w, i: {"reason": "matrix"},
        expect={"pharmacist": OWN, "hw": OWN, "staff": "403", "grader": "403", "admin": "403"},
    ),
    E(
        "pharmacy-prescription-fhir",
        "api",
        obj="prescription",
        arg="prescription_id",
        expect={"pharmacist": OWN, "hw": OWN},
    ),
    E(
        "pharmacy-medication-list",
        "api",
        expect={"hw": "ok", "pharmacist": "ok", "staff": "ok", "grader": "ok", "admin": "ok"},
    ),
    # --- kiosk API ---
    E("pharmacy-kiosk-heartbeat", "kiosk", ("POST",), body=lambda w, i: {}),
    E(
        "pharmacy-kiosk-dispense",
        "kiosk",
        ("POST",),
        obj="code",
        where="body",
        arg="code",
        body=lambda w, i: {"code": i},
    ),
    E(
        "pharmacy-kiosk-dispense-confirm",
        "kiosk",
        ("POST",),
        obj="dispense",
        arg="dispense_id",
        body=lambda w, i: {},
    ),
    E(
        "pharmacy-kiosk-dispense-complete",
        "kiosk",
        ("POST",),
        obj="dispense",
        arg="dispense_id",
        body=lambda w, i: {},
    ),
    E(
        "pharmacy-kiosk-dispense-fail",
        "kiosk",
        ("POST",),
        obj="dispense",
        arg="dispense_id",
        body=lambda w, i: {"reason": "jam"},
    ),
    E("pharmacy-kiosk-call-request", "kiosk", ("POST",), body=lambda w, i: {}),
    # --- referrals portal ---
    E(
        "referrals:inbox",
        "portal",
        expect={"hw": "ok", "staff": "ok", "admin": "ok", "pharmacist": "404", "grader": "404"},
        list_of="referral",
    ),
    E(
        "referrals:detail",
        "portal",
        obj="referral",
        arg="referral_id",
        expect={
            "hw": OWN,
            "staff": OWN,
            "admin": "ok ok 404",
            "pharmacist": "404",
            "grader": "404",
        },
    ),
    # The referral letter (PDF): whoever may open the referral page.
    E(
        "referrals:letter",
        "portal",
        obj="referral",
        arg="referral_id",
        expect={
            "hw": OWN,
            "staff": OWN,
            "admin": "ok ok 404",
            "pharmacist": "404",
            "grader": "404",
        },
    ),
    # Transitions: the lookup is scoped first (another organisation's referral, or one the role
    # cannot see, is a 404); then the service checks the role (403 on a visible referral).
    E(
        "referrals:send",
        "portal",
        ("POST",),
        obj="referral",
        arg="referral_id",
        body=lambda w, i: REFERRAL_BODY,
        expect={
            "hw": OWN,
            "staff": "404",
            "admin": "ok ok 404",
            "pharmacist": "404",
            "grader": "404",
        },
    ),
    *[
        E(
            f"referrals:{action}",
            "portal",
            ("POST",),
            obj="referral",
            arg="referral_id",
            body=lambda w, i: REFERRAL_BODY,
            expect={
                "hw": "403 404 404",
                "staff": OWN,
                "admin": "403 403 404",
                "pharmacist": "404",
                "grader": "404",
            },
        )
        for action in ("accept", "decline", "attended", "no_show", "complete")
    ],
    E(
        "referrals:cancel",
        "portal",
        ("POST",),
        obj="referral",
        arg="referral_id",
        body=lambda w, i: REFERRAL_BODY,
        expect={
            "hw": OWN,
            "staff": "403 404 404",
            "admin": "ok ok 404",
            "pharmacist": "404",
            "grader": "404",
        },
    ),
    # --- referrals API ---
    E(
        "referrals-list",
        "api",
        list_of="referral",
        expect={"hw": "ok", "staff": "ok", "admin": "ok", "pharmacist": "ok", "grader": "ok"},
    ),
    E(
        "referrals-list",
        "api",
        ("POST",),
        obj="screening",
        where="body",
        arg="screening",
        body=lambda w, i: {"screening": i, "hospital": w["hospital_A"]},
        expect={"hw": OWN, "admin": "ok ok 404"},
    ),
    E(
        "referrals-candidates",
        "api",
        obj="screening",
        where="query",
        arg="screening",
        expect={"hw": OWN},
    ),
    E(
        "referrals-detail",
        "api",
        obj="referral",
        arg="referral_id",
        expect={"hw": OWN, "staff": OWN},
    ),
    E("referrals-fhir", "api", obj="referral", arg="referral_id", expect={"hw": OWN, "staff": OWN}),
    *[
        E(
            f"referrals-{action}",
            "api",
            ("POST",),
            obj="referral",
            arg="referral_id",
            body=lambda w, i, action=action: REFERRAL_API_BODY[action],
            expect={"hw": "403 404 404", "staff": OWN, "admin": "403 403 404", "pharmacist": "404"},
        )
        for action in ("accept", "decline", "attended", "no-show", "complete")
    ],
    E(
        "referrals-cancel",
        "api",
        ("POST",),
        obj="referral",
        arg="referral_id",
        body=lambda w, i: REFERRAL_API_BODY["cancel"],
        expect={
            "hw": OWN,
            "staff": "403 404 404",
            "admin": "ok ok 404",
            "pharmacist": "404",
            "grader": "404",
        },
    ),
    # --- grading portal (graders only; their reading centre's screenings) ---
    E("grading:queue", "portal", expect={"grader": "ok"}, list_of="case"),
    E(
        "grading:read",
        "portal",
        ("GET", "POST"),
        obj="screening",
        arg="screening_id",
        body=lambda w, i: GRADING_PORTAL_BODY,
        expect={"grader": OWN},
    ),
    # --- grading API ---
    E(
        "grading-queue",
        "api",
        list_of="case",
        expect={"hw": "ok", "pharmacist": "ok", "staff": "ok", "grader": "ok", "admin": "ok"},
    ),
    E("grading-case", "api", obj="screening", arg="screening_id", expect={"grader": OWN}),
    # The platform admin sees every case but reads none: recording a read is a grader's act.
    E(
        "grading-reads",
        "api",
        ("POST",),
        obj="screening",
        arg="screening_id",
        body=lambda w, i: GRADING_API_BODY,
        expect={"grader": OWN, "admin": "403 403 404"},
    ),
    E("grading-fhir", "api", obj="screening", arg="screening_id", expect={"grader": OWN}),
    # --- dashboard ---
    # The programme dashboard: platform admins (and users granted dashboard.DashboardAccess) only.
    E("dashboard:index", "portal", expect={"admin": "ok"}),
    E("dashboard:export_csv", "portal", expect={"admin": "ok"}),
    E("dashboard:field_performance", "portal", expect={"admin": "ok"}),
    E("dashboard:field_performance_summary", "portal", expect={"admin": "ok"}),
    E("dashboard:field_performance_export_csv", "portal", expect={"admin": "ok"}),
    E("dashboard:field_performance_export_json", "portal", expect={"admin": "ok"}),
    # --- representative admin pages holding patient data ---
    E("admin:index", "admin"),
    E("admin:screening_patient_changelist", "admin", list_of="patient"),
    # A missing object's change page redirects to the admin index ("does not exist" message).
    E(
        "admin:screening_patient_change",
        "admin",
        obj="patient",
        arg="object_id",
        expect={"admin": "ok ok 302"},
    ),
    E(
        "admin:screening_screening_change",
        "admin",
        obj="screening",
        arg="object_id",
        expect={"admin": "ok ok 302"},
    ),
    E("admin:pharmacy_prescription_changelist", "admin"),
    E("admin:referrals_referral_changelist", "admin"),
    E("admin:accounts_auditevent_changelist", "admin"),
]

# URL patterns deliberately outside the matrix, with the reason.
EXCLUDED_PREFIXES = {
    "admin:": "the admin's internals; the representative pages above are in the matrix",
    "set_language": "django.conf.urls.i18n: switches the language cookie, no data",
    "javascript-catalog": "translated strings for the browser, no data",
}


def url_names() -> list[tuple[str, str]]:
    """Every named URL pattern in the URLconf, recursively: (qualified name, route)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: list[tuple[str, str]] = []

    def walk(patterns: list, namespace: str, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = namespace
                if p.namespace:
                    ns = f"{namespace}{p.namespace}:"
                walk(p.url_patterns, ns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                found.append((f"{namespace}{p.name or '<unnamed>'}", prefix + str(p.pattern)))

    walk(get_resolver().url_patterns, "", "/")
    return found


def entry_cases() -> list[tuple[Entry, str, str, str]]:
    cases = []
    for entry in MATRIX:
        for method in entry.methods:
            for actor in ACTORS:
                for kind in OBJECT_KINDS if entry.obj else ("none",):
                    cases.append((entry, method, actor, kind))
    return cases


def case_id(case: tuple[Entry, str, str, str]) -> str:
    entry, method, actor, kind = case
    return f"{entry.name}-{method}-{actor}-{kind}"


def build_world() -> dict[str, Any]:
    """Both sides' organisations, users and objects (created through factories and services)."""
    from django.conf import settings
    from rest_framework.authtoken.models import Token

    from accounts.models import Notification, NotificationKind
    from pharmacy import codes
    from pharmacy import services as pharmacy_services
    from pharmacy.models import Prescription, PrescriptionItem
    from screening.models import EyeResult, ScreeningImage
    from tests.factories import (
        AdminFactory,
        HealthWorkerFactory,
        PatientFactory,
        ScreeningFactory,
        SiteFactory,
    )
    from tests.grading.factories import GraderFactory, ReadingCentreFactory, open_case
    from tests.pharmacy.factories import (
        MedicationFactory,
        PharmacistFactory,
        PharmacyFactory,
        kiosk_for,
        link,
        stock,
    )
    from tests.referrals.factories import HospitalFactory, HospitalStaffFactory, ReferralFactory

    media = settings.MEDIA_ROOT
    (media / "matrix").mkdir(parents=True, exist_ok=True)
    (media / "matrix" / "eye.jpg").write_bytes(_jpeg())
    (media / "matrix" / "heat.png").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
        b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    medication = MedicationFactory()
    w: dict[str, Any] = {"medication": medication.pk, "users": {}, "tokens": {}}
    users = w["users"]
    for side in ("A", "B"):
        site = SiteFactory()
        hw = HealthWorkerFactory(site=site)
        pharmacy = PharmacyFactory()
        link(pharmacy, site)
        pharmacist = PharmacistFactory(pharmacy=pharmacy)
        hospital = HospitalFactory()
        staff = HospitalStaffFactory(hospital=hospital)
        kiosk, secret = kiosk_for(pharmacy, name=f"Kiosk {side}")
        stock(kiosk, medication, 50)
        patient = PatientFactory(site=site, name=f"Matrix patient {side}")
        screening = ScreeningFactory(
            patient=patient, site=site, health_worker=hw, triage="medication"
        )
        image = ScreeningImage.objects.create(
            screening=screening,
            eye="left",
            path="matrix/eye.jpg",
            sha256="0" * 64,
            width=64,
            height=64,
            gradable=True,
        )
        result = EyeResult.objects.create(
            screening=screening,
            eye="left",
            probabilities={"N": 1.0},
            top_class="N",
            heatmap_path="matrix/heat.png",
            model_version="matrix",
        )

        def prescribe(scr, pharmacy=pharmacy, patient=patient, hw=hw, pharmacist=pharmacist):
            p = Prescription.objects.create(
                pharmacy=pharmacy,
                patient=patient,
                screening=scr,
                source=Prescription.Source.USER,
                requested_by=hw,
            )
            PrescriptionItem.objects.create(prescription=p, medication=medication, quantity=1)
            pharmacy_services.prescription_approve(
                user=pharmacist,
                prescription_id=p.pk,
                counselling=_counselling(),
                acknowledge_warnings=True,
            )
            p.refresh_from_db()
            return p, codes.code_from_salt(p.dispense_code.salt)

        prescription, code = prescribe(screening)
        # A second prescription, presented at the side's kiosk: the dispense of the kiosk endpoints.
        dispensed, dispensed_code = prescribe(
            ScreeningFactory(patient=patient, site=site, health_worker=hw)
        )
        dispense = pharmacy_services.dispense_reserve(
            kiosk=kiosk, code=dispensed_code, idempotency_key=f"m-{side}"
        )
        referral = ReferralFactory(screening=screening, hospital=hospital)
        # The side's reading centre reads for its site; its screening is a case to read.
        centre = ReadingCentreFactory(sites=[site])
        case = open_case(screening)
        w[side] = {
            "patient": patient.pk,
            "screening": screening.pk,
            "image": image.pk,
            "result": result.pk,
            "prescription": prescription.pk,
            "code": code,
            "dispense": dispense.pk,
            "referral": referral.pk,
            "case": case.pk,
            "notification": Notification.objects.create(
                recipient=hw,
                kind=NotificationKind.REFERRAL_OUTCOME,
                title_msgid="Referral outcome",
                dedupe_key=f"matrix-{side}",
            ).pk,
            "names": [patient.name, patient.pseudonym],
        }
        w[f"hospital_{side}"] = hospital.pk
        if side == "A":
            users.update(
                hw_a=hw, pharmacist=pharmacist, staff_a=staff, grader=GraderFactory(centre=centre)
            )
            w["kiosk_auth"] = f"Kiosk {kiosk.kiosk_id}:{secret}"
        else:
            users.update(hw_b=hw, staff_b=staff)
    users["admin"] = AdminFactory()
    for actor, user in users.items():
        w["tokens"][actor] = Token.objects.create(user=user).key
    w["missing"] = dict.fromkeys(w["A"], MISSING_ID)
    w["missing"]["code"] = "ZZZZ-ZZZZ"
    return w
